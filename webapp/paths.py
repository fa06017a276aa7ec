"""Where the portal's templates, static files and migrations live.

In a source checkout they sit at the top of the repository; in an installed wheel the build hook
(setup.py) places them inside the webapp package.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_INSTALLED = PACKAGE_DIR / "templates"
ROOT = PACKAGE_DIR if _INSTALLED.is_dir() else PACKAGE_DIR.parent

TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"
MIGRATIONS_DIR = ROOT / "migrations"

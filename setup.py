"""Build hook: the wheel carries templates/, static/ and migrations/ inside the webapp package.

In a source checkout they stay at the top of the repository (see webapp/paths.py).
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

ASSET_DIRS = ("templates", "static", "migrations")


class BuildPyWithAssets(build_py):
    def run(self):
        super().run()
        for name in ASSET_DIRS:
            if os.path.isdir(name):
                self.copy_tree(name, os.path.join(self.build_lib, "webapp", name))


setup(cmdclass={"build_py": BuildPyWithAssets})

"""The Entrust spec the sandbox tests validate against is in the repository, unmodified."""

import hashlib

from . import schema

SPEC_SHA256 = "9f0df5e835834c17d1893505bccdee44e7ce85809c3cb9af198ba20ccdf24fdd"


def test_spec_is_the_published_file_kept_in_the_repository():
    repo = schema.SPEC_PATH.parents[2]
    assert (repo / "pyproject.toml").is_file()
    in_repo = schema.SPEC_PATH.relative_to(repo).as_posix()
    assert in_repo == "entrust_sandbox/spec/cms-api-2.1.0.yaml"
    assert hashlib.sha256(schema.SPEC_PATH.read_bytes()).hexdigest() == SPEC_SHA256
    assert schema.spec()["info"]["title"] == "Entrust Certificate Services Enterprise API"
    assert schema.spec()["info"]["version"] == "2.1.0"

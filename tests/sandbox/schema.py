"""A small validator for the Swagger 2.0 schemas of cms-api-2.1.0.yaml.

It resolves `$ref`, merges `allOf`, and checks type, enum, required, maxLength, date and
date-time formats, array items and (strictly) that objects carry no property the schema does not
declare, so a misspelt field name fails. `live_spec()` applies the sandbox's documented
departures of the live API to the spec first (the same list that `entrust_sandbox.settings.Fidelity`
switches), so the live shape is what is checked by default.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path

import yaml

import entrust_sandbox

# Entrust's published spec, kept byte-for-byte in the repository (see its README.md).
SPEC_PATH = Path(entrust_sandbox.__file__).resolve().parent / "spec" / "cms-api-2.1.0.yaml"

DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
}


@functools.cache
def spec() -> dict:
    """The spec as published."""
    return yaml.safe_load(SPEC_PATH.read_text())


@functools.cache
def live_spec() -> dict:
    """The spec with the live API's departures applied (live behaviour)."""
    s = copy.deepcopy(spec())
    defs = s["definitions"]
    # 9.1: domains carry verificationStatus, not status.
    defs["Domain"]["properties"]["verificationStatus"] = defs["Domain"]["properties"].pop("status")
    # 9.2: /inventories answers under `inventories`.
    inv = s["paths"]["/inventories"]["get"]["responses"]["200"]["schema"]["properties"]
    inv["inventories"] = inv.pop("inventory")
    # 9.7: /organizationalUnits answers under `organizationalunits`.
    ous = s["paths"]["/organizationalUnits"]["get"]["responses"]["200"]["schema"]["properties"]
    ous["organizationalunits"] = ous.pop("organizations")
    return s


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = root["definitions"][name]
    return schema


def flatten(schema: dict, root: dict) -> dict:
    """Resolve refs and merge allOf parts into one schema."""
    schema = _resolve(schema, root)
    if "allOf" not in schema:
        return schema
    merged: dict = {"properties": {}, "required": []}
    for part in [*schema["allOf"], {k: v for k, v in schema.items() if k != "allOf"}]:
        part = flatten(part, root)
        merged["properties"].update(part.get("properties", {}))
        merged["required"] += part.get("required", [])
        for key, value in part.items():
            if key not in ("properties", "required"):
                merged.setdefault(key, value)
    if merged["properties"] and "type" not in merged:
        merged["type"] = "object"
    return merged


def errors(instance, schema: dict, root: dict | None = None, path: str = "$") -> list[str]:
    """Every way `instance` departs from `schema` (empty when it conforms)."""
    root = root or live_spec()
    s = flatten(schema, root)
    found: list[str] = []
    kind = s.get("type")
    if kind == "object" or (kind is None and "properties" in s):
        kind = "object"
    if kind:
        expected = TYPES[kind]
        if not isinstance(instance, expected) or (
            kind in ("integer", "number") and isinstance(instance, bool)
        ):
            return [f"{path}: expected {kind}, got {type(instance).__name__}"]
    if "enum" in s and instance not in s["enum"]:
        found.append(f"{path}: {instance!r} not in enum")
    if isinstance(instance, str):
        if s.get("format") == "date-time" and not DATE_TIME.match(instance):
            found.append(f"{path}: {instance!r} is not a date-time")
        if s.get("format") == "date" and not DATE.match(instance):
            found.append(f"{path}: {instance!r} is not a date")
        if "maxLength" in s and len(instance) > s["maxLength"]:
            found.append(f"{path}: longer than {s['maxLength']}")
    if kind == "object":
        props = s.get("properties", {})
        for name in s.get("required", []):
            if name not in instance:
                found.append(f"{path}: missing required {name}")
        for name, value in instance.items():
            if name in props:
                found += errors(value, props[name], root, f"{path}.{name}")
            elif props:
                found.append(f"{path}: unexpected property {name}")
    if kind == "array" and "items" in s:
        for i, item in enumerate(instance):
            found += errors(item, s["items"], root, f"{path}[{i}]")
    return found


def response_schema(path: str, method: str, status: int, root: dict | None = None) -> dict | None:
    """The declared schema of a response (falling back to `default`), or None if it has none."""
    root = root or live_spec()
    responses = root["paths"][path][method.lower()]["responses"]
    entry = responses.get(str(status)) or responses.get("default")
    assert entry is not None, f"{method} {path} does not declare {status}"
    return entry.get("schema")


def check(response, path: str, method: str, root: dict | None = None) -> None:
    """Assert a live response conforms to the spec's schema for its status."""
    schema = response_schema(path, method, response.status_code, root)
    if schema is None:
        assert response.content == b"", f"{method} {path} {response.status_code} has a body"
        return
    body = response.json()
    if response.status_code < 300:
        assert "errors" not in body
    problems = errors(body, schema, root)
    assert not problems, problems[:10]

"""The OpenAPI document is the contract: complete enough to build a console from it alone.

Every check collects all offenders and fails with the whole list, so one run shows everything to fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema  # installed with chromadb; validates examples against the document's own schemas
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from api.app import create_app
from copilot.settings import Settings
from knowledge.base import KnowledgeBase

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
PROBLEM = "application/problem+json"
UNVERSIONED = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc")
ERRORS_OF_EVERY_V1_ROUTE = ("401", "403", "422", "429", "503")

# Create-or-replace routes: a missing object under the path's id is created, never a 404.
UPSERTS = {
    ("put", "/v1/threads/{thread_id}"),
    ("put", "/v1/knowledge/documents/{document_id}"),
    ("put", "/v1/macros/{macro_id}"),
    ("put", "/v1/playbooks/{playbook_id}"),
}

Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture
def app(settings: Settings, kb: KnowledgeBase) -> FastAPI:
    return create_app(settings, knowledge=kb)


@pytest.fixture
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operations(spec: dict[str, Any]) -> Iterator[Operation]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """The schema a ``$ref`` points to (repeatedly), else the node itself."""
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        node = spec["components"]["schemas"][name]
    return node


def inline_objects(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Object schemas written inline under ``node`` (not behind a $ref), with where they are."""
    if not isinstance(node, dict):
        return
    if "properties" in node:
        yield where, node
    for key in ("items", "additionalProperties", "not"):
        yield from inline_objects(node.get(key), f"{where}.{key}")
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        for index, option in enumerate(node.get(key, [])):
            yield from inline_objects(option, f"{where}.{key}[{index}]")
    for name, prop in node.get("properties", {}).items():
        yield from inline_objects(prop, f"{where}.{name}")


def blank(text: Any) -> bool:
    return not isinstance(text, str) or not text.strip()


def report(what: str, offenders: list[str]) -> str:
    return f"{len(offenders)} {what}:\n  " + "\n  ".join(offenders)


def test_openapi_describes_every_field_of_every_schema(spec: dict[str, Any]) -> None:
    offenders = []
    for name, schema in spec["components"]["schemas"].items():
        # FastAPI names the models it generates for form bodies Body_<operation id>; it gives them no
        # docstring, but their fields (the form parts) are checked below like any other.
        if blank(schema.get("description")) and not name.startswith("Body_"):
            offenders.append(f"{name} (the schema itself: give the model or enum a docstring)")
        for where, obj in inline_objects(schema, name):
            offenders += [f"{where}.{field}" for field, prop in obj["properties"].items()
                          if blank(prop.get("description"))]
    assert not offenders, report("schema fields without a description", offenders)


def test_openapi_describes_every_parameter(spec: dict[str, Any]) -> None:
    offenders = [f"{method.upper()} {path}: {param['in']} parameter {param['name']!r}"
                 for method, path, operation in operations(spec)
                 for param in operation.get("parameters", []) if blank(param.get("description"))]
    assert not offenders, report("parameters without a description", offenders)


def request_examples(spec: dict[str, Any], operation: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(media type, schema, example) for every example of the operation's request body."""
    for media, content in operation["requestBody"]["content"].items():
        schema = content.get("schema", {})
        if "example" in content:
            yield media, schema, content["example"]
        for example in content.get("examples", {}).values():
            yield media, schema, example["value"]
        for example in resolve(spec, schema).get("examples", []):
            yield media, schema, example


def models_named(name: str, base: type[BaseModel] = BaseModel) -> list[type[BaseModel]]:
    """The pydantic models whose schema is named ``name`` (FastAPI names a body's schema after its model)."""
    found = []
    for model in base.__subclasses__():
        if model.__name__ == name and model.__module__.startswith(("api.", "copilot.")):
            found.append(model)
        found += models_named(name, model)
    return list(dict.fromkeys(found))


def test_openapi_gives_valid_examples_for_every_request_body(spec: dict[str, Any]) -> None:
    missing, invalid = [], []
    for method, path, operation in operations(spec):
        if "requestBody" not in operation:
            continue
        where = f"{method.upper()} {path}"
        found = {media: 0 for media in operation["requestBody"]["content"]}
        for media, schema, example in request_examples(spec, operation):
            found[media] += 1
            # against the document (what a console generated from it would check) ...
            validator = jsonschema.Draft202012Validator({**schema, "components": spec["components"]})
            invalid += [f"{where} {media}: {'.'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
                        for e in validator.iter_errors(example)]
            # ... and against the model the route really validates with (its validators included)
            if media == "application/json":
                name = schema.get("$ref", "").removeprefix("#/components/schemas/")
                models = models_named(name)
                if len(models) != 1:
                    invalid.append(f"{where}: the body's schema {name!r} is not one model of ours: {models}")
                    continue
                try:
                    models[0].model_validate_json(json.dumps(example))
                except ValueError as exc:
                    invalid.append(f"{where}: {name} refuses its example: {exc}")
        missing += [f"{where} ({media})" for media, count in found.items() if not count]
    assert not missing + invalid, "\n".join(report(what, offenders) for what, offenders in (
        ("request bodies without an example", missing), ("request body examples that do not validate", invalid))
        if offenders)


def test_openapi_declares_the_errors_of_every_v1_operation(spec: dict[str, Any]) -> None:
    offenders = []
    for method, path, operation in operations(spec):
        where = f"{method.upper()} {path}"
        if blank(operation.get("summary")):
            offenders.append(f"{where}: no summary")
        if not operation.get("tags"):
            offenders.append(f"{where}: no tag")
        if not path.startswith("/v1/"):
            continue
        wanted = list(ERRORS_OF_EVERY_V1_ROUTE)
        has_path_parameter = any(p["in"] == "path" for p in operation.get("parameters", []))
        if has_path_parameter and (method, path) not in UPSERTS:
            wanted.append("404")
        if "requestBody" in operation:  # the body limits answer these for every body, before any route code
            wanted += ["413", "415"]
        responses = operation.get("responses", {})
        for code in wanted:
            if code not in responses:
                offenders.append(f"{where}: {code} not declared")
            elif PROBLEM not in responses[code].get("content", {}):
                offenders.append(f"{where}: {code} is not declared as {PROBLEM}")
        for code, response in responses.items():
            if code[0] in "45" and PROBLEM not in response.get("content", {}):
                offenders.append(f"{where}: {code} is not declared as {PROBLEM}")
            if blank(response.get("description")):
                offenders.append(f"{where}: response {code} has no description")
    assert not offenders, report("operations with missing summaries, tags or error responses", offenders)


def test_openapi_versions_every_route_under_v1_behind_a_bearer_key(spec: dict[str, Any]) -> None:
    schemes = spec.get("components", {}).get("securitySchemes", {})
    bearer = {name for name, scheme in schemes.items()
              if scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer"}
    assert bearer, f"no http bearer security scheme among {sorted(schemes)}"
    offenders = []
    for method, path, operation in operations(spec):
        where = f"{method.upper()} {path}"
        if path.startswith(UNVERSIONED):
            continue
        if not path.startswith("/v1/"):
            offenders.append(f"{where}: not under /v1")
        if not any(bearer & set(requirement) for requirement in operation.get("security", [])):
            offenders.append(f"{where}: no bearer security requirement")
    assert not offenders, report("operations outside /v1 or without the bearer key", offenders)


def test_openapi_gives_every_operation_a_unique_id(spec: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    offenders = []
    for method, path, operation in operations(spec):
        where = f"{method.upper()} {path}"
        operation_id = operation.get("operationId")
        if blank(operation_id):
            offenders.append(f"{where}: no operationId")
        elif operation_id in seen:
            offenders.append(f"{where}: operationId {operation_id!r} already used by {seen[operation_id]}")
        else:
            seen[operation_id] = where
    assert not offenders, report("operations without a unique operationId", offenders)

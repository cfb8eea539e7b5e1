#!/usr/bin/env python3
"""Build the kubeconform schemas in this folder from their upstream sources (see README.md).

Core kinds: the ``<kind>-<group>-<version>.json`` schemas of one ``vX.Y.0-local-strict`` folder
of the ``kubernetes-validate`` wheel (PyPI). Each is made self-contained: the definitions it
reaches are copied into its own ``$defs`` (so kubeconform resolves nothing outside the file).

Custom resources: ``CustomResourceDefinition`` YAML files. Each served version's
``openAPIV3Schema`` becomes ``<kind>-<group prefix>-<version>.json``, made strict (objects with
``properties`` reject unknown fields unless ``x-kubernetes-preserve-unknown-fields``), with
``nullable`` turned into a ``null`` type and ``apiVersion`` / ``kind`` pinned.

Descriptions are dropped everywhere (they are most of the bytes and validate nothing).
File names follow kubeconform's ``{{ .ResourceKind }}{{ .KindSuffix }}.json``.

    python3 build_schemas.py --k8s-dir DIR --kind deployment-apps-v1 ... --crd FILE ... --out DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

# Keywords whose value is a map of name -> schema (names are data, never keywords).
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
# Keywords whose value is one schema or a list of schemas.
SCHEMA_ONE = ("items", "additionalProperties", "not", "additionalItems", "contains")
SCHEMA_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")


def walk(node: Any, visit: Any) -> Any:
    """Apply ``visit`` to every schema object under ``node`` (bottom-up), keeping data keys."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: walk(sub, visit) for name, sub in value.items()}
        elif key in SCHEMA_ONE and isinstance(value, dict):
            out[key] = walk(value, visit)
        elif key in SCHEMA_LIST and isinstance(value, list):
            out[key] = [walk(sub, visit) for sub in value]
        else:
            out[key] = value
    return visit(out)


def strip_descriptions(schema: dict[str, Any]) -> dict[str, Any]:
    schema.pop("description", None)
    return schema


def core_kind(k8s_dir: Path, name: str) -> dict[str, Any]:
    """A self-contained copy of ``<name>.json`` with only the definitions it reaches."""
    definitions = json.loads((k8s_dir / "_definitions.json").read_text())["$defs"]
    top = json.loads((k8s_dir / f"{name}.json").read_text())
    needed: dict[str, Any] = {}

    def rewrite(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str) and "#/$defs/" in ref:
            target = ref.split("#/$defs/", 1)[1]
            schema["$ref"] = f"#/$defs/{target}"
            if target not in needed:
                needed[target] = None  # placeholder against cycles
                needed[target] = walk(definitions[target], lambda s: rewrite(strip_descriptions(s)))
        return strip_descriptions(schema)

    body = walk(top, rewrite)
    body.pop("$id", None)
    body["$defs"] = {key: needed[key] for key in sorted(needed)}
    return body


def strict_crd(schema: dict[str, Any]) -> dict[str, Any]:
    schema = strip_descriptions(schema)
    if schema.get("nullable") is True and isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        schema["additionalProperties"] = False
    return schema


def crd_kinds(crd_file: Path) -> dict[str, dict[str, Any]]:
    """``{file stem: schema}`` for every served version of every CRD in ``crd_file``."""
    result: dict[str, dict[str, Any]] = {}
    for doc in yaml.safe_load_all(crd_file.read_text()):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        group, kind = spec["group"], spec["names"]["kind"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            schema = walk(version["schema"]["openAPIV3Schema"], strict_crd)
            props = schema.setdefault("properties", {})
            props["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
            props["kind"] = {"type": "string", "enum": [kind]}
            stem = f"{kind.lower()}-{group.split('.')[0].lower()}-{version['name']}"
            result[stem] = schema
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k8s-dir", type=Path, required=True)
    parser.add_argument("--kind", action="append", default=[], help="e.g. deployment-apps-v1")
    parser.add_argument("--crd", action="append", type=Path, default=[])
    parser.add_argument("--only", action="append", default=[], help="keep only these CRD stems")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    schemas = {name: core_kind(args.k8s_dir, name) for name in args.kind}
    for crd_file in args.crd:
        for stem, schema in crd_kinds(crd_file).items():
            if not args.only or stem in args.only:
                schemas[stem] = schema
    for stem, schema in sorted(schemas.items()):
        text = json.dumps(schema, indent=1, sort_keys=True) + "\n"
        (args.out / f"{stem}.json").write_text(text)
        print(f"{stem}.json {len(text):>8} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

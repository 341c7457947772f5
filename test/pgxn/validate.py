#!/usr/bin/env python3
"""Validate a JSON document against a JSON Schema (draft 2020-12).

Usage: validate.py SCHEMA [DOCUMENT]   (DOCUMENT defaults to standard input)

Prints "valid" and exits 0, or prints one line per violation
("<json path>: <message>") and exits 1 (also for a document that is not JSON
or has a key twice in one object); exits 2 when the schema is not a valid
draft 2020-12 schema or a file cannot be read.  Used by
test/t/151_meta_json.pl with test/pgxn/meta-spec-v1.schema.json.
"""
import json
import sys

import jsonschema


def no_duplicates(pairs):
    """object_pairs_hook for json.load: a key twice in one object is an error
    (JSON parsers disagree on which value wins)."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def main(argv):
    """Loads the schema and the document, prints the verdict, returns the exit status."""
    if len(argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            schema = json.load(f, object_pairs_hook=no_duplicates)
    except (OSError, ValueError) as e:
        print(f"cannot read the schema: {e}", file=sys.stderr)
        return 2
    try:
        if len(argv) == 3:
            with open(argv[2], encoding="utf-8") as f:
                doc = json.load(f, object_pairs_hook=no_duplicates)
        else:
            doc = json.load(sys.stdin, object_pairs_hook=no_duplicates)
    except OSError as e:
        print(f"cannot read the document: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"$: not a JSON document: {e}")
        return 1
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as e:
        print(f"invalid schema: {e.message}", file=sys.stderr)
        return 2
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if not errors:
        print("valid")
        return 0
    for e in errors:
        path = "$" + "".join(f"[{p!r}]" for p in e.absolute_path)
        print(f"{path}: {e.message}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

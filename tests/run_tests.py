"""Runs the test binaries of one cargo build, as `cargo test` would, without building again.

`make package` builds the tests and the Lambda zip in one cargo-lambda build (its linker
settings differ from a plain `cargo test`, which would compile everything a second time) and
saves cargo's JSON messages. This runs each test executable they list, from the repository
root (where `cargo test` runs them), with the arguments given here (e.g. `--include-ignored`),
and exits non-zero when any fails or none was found.

    python tests/run_tests.py target/test-build.json [test binary args...]
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def executables(messages):
    """The test executables the build produced, lib's first, each once, in build order."""
    found = []
    for line in open(messages):
        try:
            msg = json.loads(line)
        except ValueError:
            continue  # cargo-lambda's own lines
        if msg.get("reason") == "compiler-artifact" and msg.get("profile", {}).get("test") and msg.get("executable"):
            name = f"{msg['target']['kind'][0]} {msg['target']['name']}"
            if msg["executable"] not in [e for _, e in found]:
                found.append((name, msg["executable"]))
    return sorted(found, key=lambda f: f[0] != "lib autostop")


def main():
    messages, args = sys.argv[1], sys.argv[2:]
    tests = executables(messages)
    if not tests:
        sys.exit(f"run_tests: {messages} lists no test executable; run `make package`")
    failed = []
    for name, exe in tests:
        print(f"\n     Running {name} ({os.path.relpath(exe, ROOT)})", flush=True)
        if subprocess.run([exe, *args], cwd=ROOT).returncode != 0:
            failed.append(name)
    print(f"\nrun_tests: {len(tests)} test binaries, {len(failed)} failed{': ' + ', '.join(failed) if failed else ''}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

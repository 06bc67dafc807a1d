#!/usr/bin/env python3
"""The house rules a newcomer relies on, checked on the sources (HACKING.md):
- core/ includes neither cJSON, libmicrohttpd nor a models/, trainer/ or server/ header;
- models/ includes no trainer/ or server/ header and no cJSON or libmicrohttpd;
- no model-family kind is compared as a string outside models/<family>.c and the registry
  (models/model.c, models/embedding.c for embedders): other code asks the family's ops;
- no function runs over 150 lines outside tests/.
Prints every breach and exits 1 when there is one."""
import os, re, sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
LAYERS = ["core", "models", "trainer", "server"]
FAMILIES = {"models/" + f for f in ("forest.c", "gbdt.c", "blend.c", "knn.c", "linear.c", "mlp.c", "model.c",
                                    "embedding.c")}
MAX_LINES = 150


def sources():
    for layer in LAYERS:
        for dirpath, _, files in os.walk(os.path.join(ROOT, layer)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    path = os.path.join(dirpath, f)
                    yield os.path.relpath(path, ROOT), open(path, encoding="utf-8").read()


def headers_of(layer):
    names = set()
    for dirpath, _, files in os.walk(os.path.join(ROOT, layer)):
        names |= {f for f in files if f.endswith(".h")}
    return names


def main():
    breaches = []
    upper = {"core": headers_of("models") | headers_of("trainer") | headers_of("server"),
             "models": headers_of("trainer") | headers_of("server")}
    own = {layer: headers_of(layer) for layer in LAYERS}
    kinds = "|".join(("rf", "extra", "gbdt", "blend", "knn", "linear", "mlp"))
    kind_cmp = re.compile(r'strcmp\([^;]*(\bkind\b|"(%s)")' % kinds)
    for path, text in sources():
        layer = path.split("/")[0]
        for n, line in enumerate(text.splitlines(), 1):
            inc = re.match(r'\s*#\s*include\s*[<"]([^>"]+)[>"]', line)
            if inc and layer in upper:
                name = inc.group(1)
                base = os.path.basename(name)
                if "cjson" in name.lower() or "microhttpd" in name or (base in upper[layer] and base not in own[layer]):
                    breaches.append(f"{path}:{n}: {layer}/ includes {name}")
            if path not in FAMILIES and kind_cmp.search(line):
                breaches.append(f"{path}:{n}: compares a model kind by name: {line.strip()}")
        # Functions: a line at column 0 that opens a body, to the next '}' at column 0.
        lines = text.splitlines()
        start = None
        for n, line in enumerate(lines, 1):
            if start is None and re.match(r"[A-Za-z_].*\)\s*\{\s*$", line) and not re.match(
                    r"(typedef|struct|enum|union|static const|const)\b.*=", line):
                start, name = n, re.search(r"(\w+)\s*\(", line).group(1)
            elif start is not None and line.startswith("}"):
                if n - start + 1 > MAX_LINES:
                    breaches.append(f"{path}:{start}: {name}() is {n - start + 1} lines (at most {MAX_LINES})")
                start = None
    for b in breaches:
        print(b)
    print(f"layout: {len(breaches)} breaches")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""ci/lint_workflows.py: checks the GitHub Actions workflows in .github/workflows/ (Debian has no
actionlint package, so this is the project's own check; CTest runs it, label "engines").

For every *.yml/*.yaml it checks that the file parses (python3-yaml), has name, on and a non-empty
jobs mapping; that every job has runs-on, timeout-minutes (every wait bounded) and a non-empty
list of steps; that every step has exactly one of uses: (owner/repo[/path]@ref) or run:; that
every `${{` is closed; that every command of a run: step calls an executable script under ci/
with no shell logic around it (no &&, ||, ;, |, $(...), backquotes: the logic lives in ci/, not in
YAML), ci/test.sh only with presets from CMakePresets.json; and that the ClusterFuzzLite steps are
consistent with .clusterfuzzlite/project.yaml (language, sanitizers; run_fuzzers' mode is one of
code-change, batch, prune, coverage and comes after build_fuzzers with the same sanitizer).
A ${{ matrix.KEY }} is checked for each value of the job's matrix list KEY.

  python3 ci/lint_workflows.py               # the repository's workflows; exit 1 on any error
  python3 ci/lint_workflows.py --root DIR    # another tree
  python3 ci/lint_workflows.py --self-test   # each rule must reject a workflow that breaks it
"""
import json
import os
import re
import shutil
import sys
import tempfile

try:
    import yaml
except ImportError:
    sys.exit("ci/lint_workflows.py: the python3 yaml module is missing (Debian: python3-yaml; "
             "ci/install-deps.sh installs it)")

CFL = "google/clusterfuzzlite/actions/"
MODES = {"code-change", "batch", "prune", "coverage"}
SHELL_LOGIC = re.compile(r"&&|\|\||;|\||\$\(|`")
CI_CALL = re.compile(r"^(?:sudo\s+)?(?:bash\s+)?(ci/[A-Za-z0-9_.-]+)(?:\s+(.*))?$")
MATRIX_REF = re.compile(r"\$\{\{\s*matrix\.([A-Za-z0-9_-]+)\s*\}\}")


def presets(root):
    with open(os.path.join(root, "CMakePresets.json")) as f:
        data = json.load(f)
    return {p["name"] for p in data.get("configurePresets", []) if not p.get("hidden")}


def project_yaml(root):
    path = os.path.join(root, ".clusterfuzzlite", "project.yaml")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return yaml.safe_load(f) or {}


def expand(text, matrix):
    """Every variant of TEXT with each ${{ matrix.K }} replaced by each value of the matrix list K."""
    keys = MATRIX_REF.findall(text)
    if not keys:
        return [text]
    key = keys[0]
    values = matrix.get(key)
    if not isinstance(values, list):
        return [MATRIX_REF.sub("X", text, count=1)]
    out = []
    for v in values:
        out += expand(re.sub(r"\$\{\{\s*matrix\." + re.escape(key) + r"\s*\}\}", str(v), text), matrix)
    return out


def check_run(root, where, run, matrix, errors, valid_presets):
    lines, cur = [], ""
    for raw in str(run).splitlines():
        line = raw.strip()
        if cur:
            line = cur + " " + line
            cur = ""
        if line.endswith("\\"):
            cur = line[:-1].strip()
            continue
        if line and not line.startswith("#"):
            lines.append(line)
    if cur:
        lines.append(cur)
    if not lines:
        errors.append(f"{where}: run: is empty")
    for line in lines:
        if SHELL_LOGIC.search(line.replace("${{", "").replace("}}", "")):
            errors.append(f"{where}: run: '{line}' has shell logic (&&, ||, ;, |, $(...), `): put it in a ci/ script")
            continue
        m = CI_CALL.match(line)
        if not m:
            errors.append(f"{where}: run: '{line}' does not call a script under ci/")
            continue
        script = os.path.join(root, m.group(1))
        if not os.path.isfile(script):
            errors.append(f"{where}: run: {m.group(1)} does not exist")
            continue
        if not line.startswith(("bash ", "sudo bash ")) and not os.access(script, os.X_OK):
            errors.append(f"{where}: run: {m.group(1)} is not executable")
        if m.group(1) == "ci/test.sh":
            for variant in expand(m.group(2) or "", matrix):
                for arg in variant.split():
                    if arg not in valid_presets:
                        errors.append(f"{where}: ci/test.sh {arg}: no such preset in CMakePresets.json")


def lint_file(root, path, errors, valid_presets, proj):
    rel = os.path.relpath(path, root)
    with open(path) as f:
        text = f.read()
    if text.count("${{") != len(re.findall(r"\$\{\{.*?\}\}", text, flags=re.S)):
        errors.append(f"{rel}: an expression '${{{{' is not closed by '}}}}'")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        errors.append(f"{rel}: does not parse: {e}")
        return
    if not isinstance(doc, dict):
        errors.append(f"{rel}: top level is not a mapping")
        return
    if not isinstance(doc.get("name"), str):
        errors.append(f"{rel}: no name")
    # YAML 1.1 reads the key `on` as true.
    if "on" not in doc and True not in doc:
        errors.append(f"{rel}: no on: (trigger)")
    jobs = doc.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        errors.append(f"{rel}: no jobs")
        return
    for jname, job in jobs.items():
        where = f"{rel}: job {jname}"
        if not isinstance(job, dict):
            errors.append(f"{where}: not a mapping")
            continue
        if "runs-on" not in job:
            errors.append(f"{where}: no runs-on")
        if not isinstance(job.get("timeout-minutes"), int):
            errors.append(f"{where}: no timeout-minutes (every job must be bounded)")
        matrix = ((job.get("strategy") or {}).get("matrix")) or {}
        steps = job.get("steps")
        if not isinstance(steps, list) or not steps:
            errors.append(f"{where}: no steps")
            continue
        built = {}  # sanitizer variants built by build_fuzzers so far in this job
        for i, step in enumerate(steps):
            swhere = f"{where} step {i + 1}" + (f" ({step.get('name')})" if isinstance(step, dict) and step.get("name") else "")
            if not isinstance(step, dict):
                errors.append(f"{swhere}: not a mapping")
                continue
            if ("uses" in step) == ("run" in step):
                errors.append(f"{swhere}: needs exactly one of uses: and run:")
                continue
            if "run" in step:
                check_run(root, swhere, step["run"], matrix, errors, valid_presets)
                continue
            uses = str(step["uses"])
            if not re.match(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?@[A-Za-z0-9_.-]+$", uses):
                errors.append(f"{swhere}: uses: '{uses}' is not owner/repo[/path]@ref")
                continue
            if not uses.startswith(CFL):
                continue
            w = step.get("with") or {}
            action = uses[len(CFL):].split("@")[0]
            sanitizers = expand(str(w.get("sanitizer", "address")), matrix)
            if action == "build_fuzzers":
                if proj is None:
                    errors.append(f"{swhere}: ClusterFuzzLite used but .clusterfuzzlite/project.yaml is missing")
                    continue
                if str(w.get("language", "")) != str(proj.get("language")):
                    errors.append(f"{swhere}: language '{w.get('language')}' is not project.yaml's '{proj.get('language')}'")
                for s in sanitizers:
                    if s != "coverage" and s not in (proj.get("sanitizers") or []):
                        errors.append(f"{swhere}: sanitizer '{s}' is not in project.yaml's sanitizers")
                built[str(w.get("sanitizer", "address"))] = True
            elif action == "run_fuzzers":
                mode = str(w.get("mode", "code-change"))
                if mode not in MODES:
                    errors.append(f"{swhere}: mode '{mode}' is not one of {sorted(MODES)}")
                if str(w.get("sanitizer", "address")) not in built:
                    errors.append(f"{swhere}: run_fuzzers without a build_fuzzers step of the same sanitizer before it")
                if mode == "coverage" and str(w.get("sanitizer")) != "coverage":
                    errors.append(f"{swhere}: mode coverage needs sanitizer: coverage")
                if "fuzz-seconds" in w and not str(w["fuzz-seconds"]).isdigit():
                    errors.append(f"{swhere}: fuzz-seconds is not a number")
            else:
                errors.append(f"{swhere}: unknown ClusterFuzzLite action '{action}'")


def lint(root):
    errors = []
    wdir = os.path.join(root, ".github", "workflows")
    files = sorted(os.path.join(wdir, f) for f in (os.listdir(wdir) if os.path.isdir(wdir) else [])
                   if f.endswith((".yml", ".yaml")))
    if not files:
        return ["no workflows in .github/workflows/"], 0
    valid_presets = presets(root)
    proj = project_yaml(root)
    for path in files:
        lint_file(root, path, errors, valid_presets, proj)
    return errors, len(files)


GOOD = """name: t
on: [push]
jobs:
  a:
    runs-on: ubuntu-latest
    timeout-minutes: 10
    strategy:
      matrix:
        preset: [asan, fuzz]
        sanitizer: [address]
    steps:
      - uses: actions/checkout@v4
      - run: ci/test.sh ${{ matrix.preset }}
      - uses: google/clusterfuzzlite/actions/build_fuzzers@v1
        with: {language: c++, sanitizer: "${{ matrix.sanitizer }}"}
      - uses: google/clusterfuzzlite/actions/run_fuzzers@v1
        with: {mode: code-change, sanitizer: "${{ matrix.sanitizer }}", fuzz-seconds: 60}
"""

# (what to break, replace this, with that, an error must contain)
BREAKS = [
    ("a file that does not parse", "jobs:\n", "jobs: [\n", "does not parse"),
    ("no jobs", "jobs:\n  a:", "jobz:\n  a:", "no jobs"),
    ("no runs-on", "    runs-on: ubuntu-latest\n", "", "no runs-on"),
    ("no timeout", "    timeout-minutes: 10\n", "", "timeout-minutes"),
    ("shell logic in run:", "ci/test.sh ${{ matrix.preset }}", "ci/test.sh asan && echo done", "shell logic"),
    ("run: not under ci/", "ci/test.sh ${{ matrix.preset }}", "cmake --preset asan", "does not call a script under ci/"),
    ("a missing ci/ script", "ci/test.sh ${{ matrix.preset }}", "ci/no_such_script.sh", "does not exist"),
    ("an unknown preset", "preset: [asan, fuzz]", "preset: [asan, fuzzz]", "no such preset"),
    ("an unclosed expression", "${{ matrix.preset }}", "${{ matrix.preset", "not closed"),
    ("uses: without a ref", "actions/checkout@v4", "actions/checkout", "owner/repo"),
    ("both uses: and run:", "      - uses: actions/checkout@v4\n", "      - uses: actions/checkout@v4\n        run: ci/test.sh\n", "exactly one"),
    ("a bad mode", "mode: code-change", "mode: fuzz-everything", "mode"),
    ("a sanitizer project.yaml lacks", "sanitizer: [address]", "sanitizer: [memory]", "not in project.yaml"),
    ("a wrong language", "language: c++", "language: rust", "language"),
    ("run_fuzzers without its build", "sanitizer: \"${{ matrix.sanitizer }}\"}\n      - uses: google/clusterfuzzlite/actions/run_fuzzers@v1\n        with: {mode: code-change, sanitizer: \"${{ matrix.sanitizer }}\"",
     "sanitizer: \"${{ matrix.sanitizer }}\"}\n      - uses: google/clusterfuzzlite/actions/run_fuzzers@v1\n        with: {mode: code-change, sanitizer: undefined", "without a build_fuzzers"),
]


def self_test(root):
    tmp = tempfile.mkdtemp(prefix="lint_workflows.")
    try:
        for name in ("ci", ".clusterfuzzlite", "CMakePresets.json"):
            os.symlink(os.path.join(root, name), os.path.join(tmp, name))
        wdir = os.path.join(tmp, ".github", "workflows")
        os.makedirs(wdir)
        path = os.path.join(wdir, "t.yml")
        failed = 0
        with open(path, "w") as f:
            f.write(GOOD)
        errors, _ = lint(tmp)
        print(("ok   " if not errors else "FAIL ") + "a valid workflow passes" + "".join("\n       " + e for e in errors))
        failed += bool(errors)
        for what, old, new, expect in BREAKS:
            assert old in GOOD, what
            with open(path, "w") as f:
                f.write(GOOD.replace(old, new, 1))
            errors, _ = lint(tmp)
            hit = any(expect in e for e in errors)
            print(("ok   " if hit else "FAIL ") + f"rejects {what}" + (f": {errors[0]}" if errors else ": no error"))
            failed += not hit
        print("ci/lint_workflows.py --self-test: " + ("all rules hold" if not failed else f"{failed} rule(s) not enforced"))
        return 1 if failed else 0
    finally:
        shutil.rmtree(tmp)


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = argv[1:]
    if args == ["--self-test"]:
        return self_test(root)
    if len(args) == 2 and args[0] == "--root":
        root = os.path.abspath(args[1])
    elif args:
        print(__doc__.strip().splitlines()[-3:], file=sys.stderr)
        print("usage: ci/lint_workflows.py [--root DIR | --self-test]", file=sys.stderr)
        return 2
    errors, n = lint(root)
    for e in errors:
        print("error: " + e)
    print(f"ci/lint_workflows.py: {n} workflow(s), {len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Past one machine: the recipes of docs/scale-out.md, run here.

deploy/Dockerfile (its build-stage RUN steps in a clean copy of the tree, its runtime stage
against the binary's libraries), deploy/k8s/ (every manifest against the Kubernetes API's
types, then each Job's pods run as local processes), deploy/slurm/ (the array script once
per task id, the submit script through a stand-in sbatch), GNU parallel over stand-in ssh
hosts (a sharded fetch and a distributed bench), and four pinned bench generators started
together with --start-at and merged, the percentiles checked against their histograms.
"""
import collections
import fractions
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
K8S = os.path.join(DEPLOY, "k8s")
SLURM = os.path.join(DEPLOY, "slurm")
SCRIPTS = os.path.join(ROOT, "scripts")
TIMING = re.compile(r"_ms$")
# Row fields that describe the connection a row happened to use, not the URL: the address,
# and whether TLS resumed (which depends on what the same process fetched before).
PER_CONNECTION = {"ip", "tls_resumed"}
# The full Dockerfile build (wolfSSL from Debian's source, about 90 s, and network to the
# Debian archive) only when asked; by default the build stage reuses build/wolfssl/.
FULL_DOCKER_BUILD = os.environ.get("RINGFETCH_TEST_DOCKER_FULL") == "1"


# ------------------------------------------------------------------ shared helpers


def write_url_list(ctx, path, n=240):
    """A list of n request lines over the run's nginx (four ports, several paths), a
    refused port and lines that are not URLs, with blank and comment lines between them
    (those make no row, but count as lines for the shard rule)."""
    ports = ctx.nginx.ports
    paths = ["/", "/static/1k.bin", "/status/404", "/redirect", "/chunked"]
    lines = ["# scale-out test list", ""]
    for i in range(n):
        if i % 37 == 5:
            lines.append(f"http://127.0.0.1:{ctx.refused_port()}/refused-{i}")
        elif i % 53 == 7:
            lines.append(f"not a url {i}")
        else:
            lines.append(f"http://127.0.0.1:{ports[i % len(ports)]}{paths[i % len(paths)]}?i={i}")
        if i % 41 == 0:
            lines += ["", "# a comment"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return n


def read_rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def comparable(rows):
    """Rows without what differs from run to run: the timings (*_ms) and PER_CONNECTION."""
    return [{k: v for k, v in r.items() if not TIMING.search(k) and k not in PER_CONNECTION}
            for r in rows]


def single_run(ctx, urls):
    """The whole list in one `ringfetch fetch`: the rows a sharded run must equal."""
    out = os.path.join(ctx.tmpdir, "single.jsonl")
    r = subprocess.run([ctx.ringfetch, "fetch", "-q", "-i", urls, "-o", out],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return read_rows(out)


def assert_same_rows(merged, single, n):
    assert len(single) == n, (len(single), n)
    assert [r["index"] for r in merged] == list(range(n))
    assert [r["line"] for r in merged] == [r["line"] for r in single]
    assert comparable(merged) == comparable(single)


def run_checked(argv, timeout=120, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, (argv, r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    return r


# ------------------------------------------------------------------------ Dockerfile


def dockerfile_stages(path):
    """deploy/Dockerfile as stages: [{"base", "name", "steps": [(KEYWORD, text)], "args"}].
    Continuation lines are joined and comments dropped, as the builder does."""
    with open(path) as f:
        raw = f.read().splitlines()
    logical, cur = [], ""
    for line in raw:
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        logical.append(cur + line)
        cur = ""
    assert not cur, "the Dockerfile ends inside a continued line"
    stages = []
    for line in logical:
        word, _, rest = line.strip().partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append({"base": parts[0], "name": name, "steps": [], "args": {}})
            continue
        assert stages, f"{word} before any FROM"
        if word == "ARG":
            key, _, value = rest.partition("=")
            stages[-1]["args"][key] = shlex.split(value)[0] if value else ""
        stages[-1]["steps"].append((word, rest))
    return stages


def dockerignore_patterns():
    with open(os.path.join(DEPLOY, "Dockerfile.dockerignore")) as f:
        return [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]


def ignored(rel, patterns):
    """Whether the build context leaves rel out (a path or any of its parents matched)."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        for p in patterns:
            if fnmatch.fnmatchcase(sub, p) or (p.startswith("**/") and
                                                fnmatch.fnmatchcase(parts[i - 1], p[3:])):
                return True
    return False


def copy_context(dest):
    """The build context: the working tree (uncommitted work included) less what
    deploy/Dockerfile.dockerignore names."""
    patterns = dockerignore_patterns()
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        rel_dir = "" if rel_dir == "." else rel_dir
        dirnames[:] = [d for d in dirnames if not ignored(os.path.join(rel_dir, d), patterns)]
        os.makedirs(os.path.join(dest, rel_dir), exist_ok=True)
        for name in filenames:
            rel = os.path.join(rel_dir, name)
            if not ignored(rel, patterns):
                shutil.copy2(os.path.join(ROOT, rel), os.path.join(dest, rel),
                             follow_symlinks=False)


def deb_package_of(path):
    """The Debian package that ships a library file (usrmerge: /lib is /usr/lib)."""
    real = os.path.realpath(path)
    for cand in (real, real.replace("/usr/lib/", "/lib/", 1), real.replace("/lib/", "/usr/lib/", 1),
                 path):
        r = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    raise AssertionError(f"no Debian package ships {path}")


def deb_closure(packages):
    """packages and everything they depend on (Depends, Pre-Depends), first alternatives."""
    seen, todo = set(), list(packages)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        r = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", p],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{p} is not an installed Debian package: {r.stderr}"
        for group in r.stdout.split(","):
            name = group.split("|")[0].strip().split(" ")[0].split(":")[0]
            if name:
                todo.append(name)
    return seen


def linked_libraries(binary):
    out = run_checked(["ldd", binary]).stdout
    return [m.group(1) for m in re.finditer(r"=>\s+(/\S+)", out)]


def test_dockerfile_stages_and_runtime(ctx):
    """Parses deploy/Dockerfile; the runtime stage's packages carry every shared library
    `ldd ringfetch` names, and its check and entrypoint run against this build's binary."""
    stages = dockerfile_stages(os.path.join(DEPLOY, "Dockerfile"))
    assert [(s["base"], s["name"]) for s in stages] == [("debian:bookworm", "build"),
                                                        ("debian:bookworm-slim", "runtime")]
    build, runtime = stages
    kinds = [w for w, _ in build["steps"]]
    assert kinds.count("RUN") >= 3 and "WORKDIR" in kinds and "COPY" in kinds, kinds

    # The build stage installs with scripts/setup, from scripts/setup's own list: run here,
    # it finds everything installed and installs nothing.
    with open(os.path.join(SCRIPTS, "setup")) as f:
        setup_text = f.read()
    listed = set(re.search(r"packages=\((.*?)\)", setup_text, re.S).group(1).split())
    build_pkgs = set(build["args"]["BUILD_PACKAGES"].split())
    assert build_pkgs <= listed, f"not in scripts/setup's list: {sorted(build_pkgs - listed)}"
    runs = [t for w, t in build["steps"] if w == "RUN"]
    assert runs[0] == "scripts/setup $BUILD_PACKAGES", runs
    assert any(t.startswith("make ") and "build/ringfetch" in t for t in runs), runs

    # Every COPY source of the build stage is in the context.
    patterns = dockerignore_patterns()
    for word, text in build["steps"]:
        if word == "COPY":
            for src in shlex.split(text)[:-1]:
                assert src == "." or os.path.exists(os.path.join(ROOT, src)), src
                assert src == "." or not ignored(src, patterns), f"{src} is dockerignored"
    assert ignored("build/wolfssl/x", patterns) and ignored("build-scale/ringfetch", patterns)
    assert ignored(".git/HEAD", patterns) and not ignored("engine/cli/main.c", patterns)

    # The runtime stage: the binary from the build stage, libraries from its packages.
    copies = [shlex.split(t) for w, t in runtime["steps"] if w == "COPY"]
    assert copies == [["--from=build", "/src/build/ringfetch", "/usr/local/bin/ringfetch"]], copies
    runtime_pkgs = runtime["args"]["RUNTIME_PACKAGES"].split()
    have = deb_closure(runtime_pkgs + ["libc6"])  # libc6: in every Debian image
    # A SANITIZE= build also links the sanitizer runtimes and what they need (libstdc++):
    # not the image's business, which builds without them.
    sanitizer = re.compile(r"/lib(asan|ubsan|lsan|tsan)\.so")
    libs = linked_libraries(ctx.ringfetch)
    san_only = deb_closure([deb_package_of(l) for l in libs if sanitizer.search(l)])
    san_only -= have
    for lib in libs:
        pkg = deb_package_of(lib)
        if pkg in san_only:
            continue
        assert pkg in have, f"{lib} comes from {pkg}, which RUNTIME_PACKAGES does not bring"
    assert "ca-certificates" in runtime_pkgs  # https checks against the system bundle

    # The runtime stage's own check and its entrypoint, on this build's binary where the
    # image puts it.
    bindir = os.path.join(ctx.tmpdir, "usr-local-bin")
    os.makedirs(bindir, exist_ok=True)
    shutil.copy2(ctx.ringfetch, os.path.join(bindir, "ringfetch"))
    env = dict(os.environ, PATH=bindir + ":/usr/bin:/bin")
    checks = [t for w, t in runtime["steps"] if w == "RUN" and t.startswith("ringfetch ")]
    assert checks == ["ringfetch --version"], checks
    out = run_checked(["/bin/sh", "-c", checks[0]], env=env).stdout
    assert out.startswith("ringfetch "), out
    entry = [json.loads(t) for w, t in runtime["steps"] if w == "ENTRYPOINT"]
    cmd = [json.loads(t) for w, t in runtime["steps"] if w == "CMD"]
    assert entry == [["ringfetch"]] and cmd == [["--version"]], (entry, cmd)
    out = run_checked(entry[0] + cmd[0], env=env).stdout
    assert re.match(r"ringfetch \d+\.\d+\.\d+ \(.*wolfSSL", out), out
    assert [t for w, t in runtime["steps"] if w == "USER"] == ["10001:10001"]


def test_dockerfile_build_stage_in_a_clean_copy(ctx):
    """Runs the build stage as a builder would, in a fresh root: the COPY steps copy the
    context (the working tree less the dockerignored paths) and each RUN runs there with
    /bin/sh -c and the stage's ARGs. build/wolfssl/ is copied in first, as the cached layer
    of `RUN scripts/wolfssl-build` (RINGFETCH_TEST_DOCKER_FULL=1 builds it, ~90 s more).
    The binary the stage leaves at /src/build/ringfetch must run."""
    if ctx.sanitize_flags:
        ctx.skip("the image build is the same with or without this build's sanitizers")
    stages = dockerfile_stages(os.path.join(DEPLOY, "Dockerfile"))
    build = stages[0]
    fs = os.path.join(ctx.tmpdir, "rootfs")
    context = os.path.join(ctx.tmpdir, "context")
    copy_context(context)
    assert not os.path.exists(os.path.join(context, "build"))
    assert not os.path.exists(os.path.join(context, ".git"))

    def host(p):
        return os.path.join(fs, p.lstrip("/"))

    workdir = "/"
    env = dict(os.environ)
    env.update(build["args"])
    env.pop("MAKEFLAGS", None)
    env.pop("MFLAGS", None)
    seeded = False
    for word, text in build["steps"]:
        if word == "WORKDIR":
            workdir = os.path.join(workdir, text)
            os.makedirs(host(workdir), exist_ok=True)
        elif word == "COPY":
            *srcs, dest = shlex.split(text)
            dest = os.path.join(workdir, dest)
            for src in srcs:
                if src == ".":
                    shutil.copytree(context, host(dest), symlinks=True, dirs_exist_ok=True)
                else:
                    target = host(dest)
                    if dest.endswith("/"):
                        os.makedirs(target, exist_ok=True)
                        target = os.path.join(target, os.path.basename(src))
                    shutil.copy2(os.path.join(context, src), target)
        elif word == "RUN":
            if "scripts/wolfssl-build" == text.strip() and not FULL_DOCKER_BUILD and not seeded:
                seed_wolfssl(host(workdir))
                seeded = True
            r = subprocess.run(["/bin/sh", "-c", text], cwd=host(workdir), env=env,
                               capture_output=True, text=True, timeout=900)
            assert r.returncode == 0, (text, r.stdout[-3000:], r.stderr[-3000:])
        elif word in ("ARG", "ENV"):
            continue
        else:
            raise AssertionError(f"the build stage has a {word} this test does not emulate")
    binary = host("/src/build/ringfetch")
    out = run_checked([binary, "--version"]).stdout
    assert re.match(r"ringfetch \d+\.\d+\.\d+ \(.*wolfSSL 5\.5\.4 source build", out), out


test_dockerfile_build_stage_in_a_clean_copy.timeout = 900 if FULL_DOCKER_BUILD else 300


def seed_wolfssl(src_root):
    """Copies this tree's wolfSSL build (the prefix scripts/wolfssl-build --prefix names)
    into the copy, where its stamp makes the RUN a no-op."""
    prefix = run_checked([os.path.join(ROOT, "scripts", "wolfssl-build"), "--prefix"]).stdout.strip()
    assert os.path.exists(os.path.join(prefix, "stamp")), f"{prefix} is not built (run make)"
    dest = os.path.join(src_root, os.path.relpath(prefix, ROOT))
    shutil.copytree(prefix, dest, symlinks=True)
    mine = run_checked([os.path.join(src_root, "scripts", "wolfssl-build"), "--prefix"]).stdout
    assert mine.strip() == dest, (mine, dest)


# ------------------------------------------------------------------------ Kubernetes

# The Kubernetes types of each kind the manifests use (python3-kubernetes: Kubernetes 1.22's
# OpenAPI types, with attribute_map giving each field's JSON name).
K8S_KINDS = {("batch/v1", "Job"): "V1Job", ("v1", "ConfigMap"): "V1ConfigMap",
             ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim"}
# Fields whose values the types leave as strings but the API server checks.
K8S_ENUMS = {
    "restartPolicy": {"Always", "OnFailure", "Never"},
    "completionMode": {"NonIndexed", "Indexed"},
    "imagePullPolicy": {"Always", "IfNotPresent", "Never"},
    "whenUnsatisfiable": {"DoNotSchedule", "ScheduleAnyway"},
    "accessModes": {"ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"},
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def k8s_models():
    try:
        import kubernetes.client as k8s  # python3-kubernetes, from scripts/setup
    except ImportError as e:
        raise AssertionError(f"python3-kubernetes is missing (scripts/setup installs it): {e}")
    return k8s


def load_manifests(directory=K8S):
    import yaml  # python3-yaml
    docs = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".yaml"):
            with open(os.path.join(directory, name)) as f:
                for doc in yaml.safe_load_all(f):
                    if doc is not None:
                        docs.append((name, doc))
    return docs


def check_shape(k8s, value, typ, path, errors):
    """value against the OpenAPI type name typ: unknown fields and wrong types are errors."""
    if typ.startswith("list["):
        if not isinstance(value, list):
            errors.append(f"{path}: a list expected, not {value!r}")
            return
        for i, v in enumerate(value):
            check_shape(k8s, v, typ[5:-1], f"{path}[{i}]", errors)
    elif typ.startswith("dict("):
        if not isinstance(value, dict):
            errors.append(f"{path}: a map expected, not {value!r}")
            return
        inner = typ[typ.index(",") + 1:-1].strip()
        for k, v in value.items():
            check_shape(k8s, v, inner, f"{path}.{k}", errors)
    elif typ == "str":
        if not isinstance(value, str):
            errors.append(f"{path}: a string expected, not {value!r}")
    elif typ == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{path}: an integer expected, not {value!r}")
    elif typ == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}: true or false expected, not {value!r}")
    elif typ in ("object", "float", "datetime", "date"):
        pass
    else:
        cls = getattr(k8s, typ)
        if not isinstance(value, dict):
            errors.append(f"{path}: a {typ} object expected, not {value!r}")
            return
        by_json = {v: k for k, v in cls.attribute_map.items()}
        for key, v in value.items():
            if key not in by_json:
                errors.append(f"{path}.{key}: {typ} has no field {key!r}")
            else:
                check_shape(k8s, v, cls.openapi_types[by_json[key]], f"{path}.{key}", errors)


def validate_manifests(docs):
    """Every problem of the manifests as a list of messages (empty: all good)."""
    k8s = k8s_models()
    errors = []
    objects = {}
    for fname, doc in docs:
        where = f"{fname}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key not in K8S_KINDS:
            errors.append(f"{where}: unknown apiVersion/kind {key}")
            continue
        typ = K8S_KINDS[key]
        check_shape(k8s, doc, typ, where, errors)
        try:  # the client's own checks: required fields present
            k8s.ApiClient()._ApiClient__deserialize(doc, typ)
        except (ValueError, TypeError, AttributeError) as e:
            errors.append(f"{where}: {e}")
        name = doc.get("metadata", {}).get("name", "")
        if not DNS_LABEL.match(name) or len(name) > 63:
            errors.append(f"{where}: metadata.name {name!r} is not a DNS label")
        if (doc["kind"], name) in objects:
            errors.append(f"{where}: a second {doc['kind']} named {name}")
        objects[(doc["kind"], name)] = doc

        def enums(node, path):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k in K8S_ENUMS:
                        for item in (v if isinstance(v, list) else [v]):
                            if item not in K8S_ENUMS[k]:
                                errors.append(f"{path}.{k}: {item!r} is not one of "
                                              f"{sorted(K8S_ENUMS[k])}")
                    enums(v, f"{path}.{k}")
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    enums(v, f"{path}[{i}]")
        enums(doc, where)

    configmaps = {n: d for (k, n), d in objects.items() if k == "ConfigMap"}
    claims = {n for (k, n) in objects if k == "PersistentVolumeClaim"}
    images = set()
    for (kind, name), doc in objects.items():
        if kind != "Job":
            continue
        where = f"Job/{name}"
        spec = doc.get("spec", {})
        tmpl = spec.get("template", {})
        pod = tmpl.get("spec", {})
        if pod.get("restartPolicy") not in ("Never", "OnFailure"):
            errors.append(f"{where}: a Job's pods need restartPolicy Never or OnFailure")
        if spec.get("completionMode") == "Indexed":
            if not isinstance(spec.get("completions"), int) or spec["completions"] < 1:
                errors.append(f"{where}: an Indexed Job needs completions")
            if spec.get("parallelism") != spec.get("completions"):
                errors.append(f"{where}: parallelism {spec.get('parallelism')} != completions "
                              f"{spec.get('completions')}: every index must run at once")
        labels = tmpl.get("metadata", {}).get("labels", {})
        for c in pod.get("topologySpreadConstraints", []):
            sel = c.get("labelSelector", {}).get("matchLabels", {})
            if not sel or any(labels.get(k) != v for k, v in sel.items()):
                errors.append(f"{where}: topologySpreadConstraints select {sel}, not the "
                              f"pods' labels {labels}")
        volumes = {v.get("name"): v for v in pod.get("volumes", [])}
        used = set()
        for c in pod.get("containers", []):
            images.add(c.get("image"))
            cname = f"{where} container {c.get('name')}"
            if not c.get("command"):
                errors.append(f"{cname}: no command")
            paths = [m.get("mountPath") for m in c.get("volumeMounts", [])]
            if len(paths) != len(set(paths)):
                errors.append(f"{cname}: a mountPath twice: {paths}")
            for m in c.get("volumeMounts", []):
                used.add(m.get("name"))
                if m.get("name") not in volumes:
                    errors.append(f"{cname}: volumeMount {m.get('name')!r} is none of the "
                                  f"pod's volumes {sorted(volumes)}")
            env = {}
            for e in c.get("env", []):
                if not ENV_NAME.match(e.get("name", "")):
                    errors.append(f"{cname}: env name {e.get('name')!r}")
                env[e.get("name")] = e
                ref = e.get("valueFrom", {}).get("configMapKeyRef")
                if ref is not None:
                    cm = configmaps.get(ref.get("name"))
                    if cm is None:
                        errors.append(f"{cname}: env {e['name']} from ConfigMap "
                                      f"{ref.get('name')!r}, which deploy/k8s does not define")
                    elif ref.get("key") not in cm.get("data", {}):
                        errors.append(f"{cname}: env {e['name']}: ConfigMap {ref.get('name')} "
                                      f"has no key {ref.get('key')!r}")
            script = " ".join(c.get("command", []) + c.get("args", []))
            for var in sorted(set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", script))):
                if var not in env and not (var == "JOB_COMPLETION_INDEX" and
                                           spec.get("completionMode") == "Indexed"):
                    if not re.search(rf"\b{var}=", script):
                        errors.append(f"{cname}: the command uses ${var}, which is not set")
            if "--shards" in script:
                shards = env.get("SHARDS", {}).get("value")
                if spec.get("completionMode") != "Indexed":
                    errors.append(f"{cname}: fetch --shards outside an Indexed Job")
                elif shards != str(spec.get("completions")):
                    errors.append(f"{cname}: SHARDS {shards!r} != completions "
                                  f"{spec.get('completions')}")
        for vname, v in volumes.items():
            if vname not in used:
                errors.append(f"{where}: volume {vname!r} is not mounted")
            if "configMap" in v and v["configMap"].get("name") not in configmaps:
                errors.append(f"{where}: volume {vname}: no ConfigMap "
                              f"{v['configMap'].get('name')!r} in deploy/k8s")
            claim = v.get("persistentVolumeClaim", {}).get("claimName")
            if "persistentVolumeClaim" in v and claim not in claims:
                errors.append(f"{where}: volume {vname}: no PersistentVolumeClaim {claim!r}")
    if len(images) != 1:
        errors.append(f"the Jobs run different images: {sorted(map(str, images))}")
    return errors


def test_k8s_manifests_against_the_api_types(ctx):
    """Every manifest of deploy/k8s/ against the Kubernetes API's types (no unknown field,
    no wrong type, required fields there), the values the API server checks, and how the
    objects refer to each other; then that a typo is caught."""
    docs = load_manifests()
    kinds = collections.Counter(d["kind"] for _, d in docs)
    assert kinds == {"Job": 4, "ConfigMap": 2, "PersistentVolumeClaim": 1}, kinds
    errors = validate_manifests(docs)
    assert errors == [], "\n".join(errors)

    jobs = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Job"}
    fetch, bench = jobs["ringfetch-fetch"], jobs["ringfetch-bench"]
    for job in (fetch, bench):
        assert job["spec"]["completionMode"] == "Indexed"
        c = job["spec"]["template"]["spec"]["containers"][0]
        assert c["image"] == "ringfetch:0.3.0"
    assert "--shards" in fetch["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "--start-at" in bench["spec"]["template"]["spec"]["containers"][0]["args"][0]
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        assert "-t ringfetch:0.3.0 ." in f.read()  # the tag the Jobs run is the one built

    # Each of these typos must be reported.
    import copy
    typos = [
        ("fetch-job.yaml", lambda d: d["spec"].__setitem__("completionMode", "Indexd")),
        ("fetch-job.yaml", lambda d: d["spec"]["template"]["spec"].__setitem__(
            "restartPolicy", "Always")),
        ("fetch-job.yaml", lambda d: d["spec"]["template"]["spec"]["containers"][0][
            "volumeMounts"][1].__setitem__("name", "date")),
        ("fetch-job.yaml", lambda d: d["spec"].__setitem__("parallelizm", 4)),
        ("fetch-job.yaml", lambda d: d["spec"].__setitem__("completions", "4")),
        ("fetch-job.yaml", lambda d: d["spec"]["template"]["spec"]["containers"][0][
            "env"][0].__setitem__("value", "3")),
        ("bench-job.yaml", lambda d: d["spec"]["template"]["spec"]["containers"][0][
            "env"][1]["valueFrom"]["configMapKeyRef"].__setitem__("key", "START")),
        ("bench-job.yaml", lambda d: d["spec"]["template"]["spec"]["containers"][0].pop(
            "name")),
        ("merge-job.yaml", lambda d: d["spec"]["template"]["spec"]["volumes"][1][
            "persistentVolumeClaim"].__setitem__("claimName", "ringfetch-dta")),
        ("storage.yaml", lambda d: d["spec"].__setitem__("accessModes", ["ReadWriteMany "])),
    ]
    for fname, mutate in typos:
        changed = copy.deepcopy(docs)
        target = next(d for f, d in changed if f == fname)
        mutate(target)
        assert validate_manifests(changed), f"a typo in {fname} went unnoticed"


test_k8s_manifests_against_the_api_types.timeout = 120


class LocalPods:
    """Runs a Job's pods as local processes: each container's command with its env (values
    and configMapKeyRef, from the ConfigMaps of deploy/k8s/ with the test's overrides),
    JOB_COMPLETION_INDEX for an Indexed Job, mountPaths mapped to local directories (a
    ConfigMap volume's keys as files, the PersistentVolumeClaim one directory for all pods)
    and ringfetch from this build on PATH."""

    def __init__(self, ctx, docs, overrides):
        self.ctx = ctx
        self.configmaps = {d["metadata"]["name"]: dict(d.get("data", {}))
                           for _, d in docs if d["kind"] == "ConfigMap"}
        for name, data in overrides.items():
            self.configmaps[name].update(data)
        self.jobs = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Job"}
        self.root = os.path.join(ctx.tmpdir, "k8s")
        self.claims = os.path.join(self.root, "claims")

    def volume_dir(self, vol, pod_id):
        if "persistentVolumeClaim" in vol:
            d = os.path.join(self.claims, vol["persistentVolumeClaim"]["claimName"])
            os.makedirs(d, exist_ok=True)
            return d
        if "configMap" in vol:
            d = os.path.join(self.root, pod_id, vol["name"])
            os.makedirs(d, exist_ok=True)
            for key, value in self.configmaps[vol["configMap"]["name"]].items():
                with open(os.path.join(d, key), "w") as f:
                    f.write(value)
            return d
        raise AssertionError(f"no local stand-in for volume {vol}")

    def run_job(self, name, timeout=60):
        job = self.jobs[name]
        spec = job["spec"]
        pod = spec["template"]["spec"]
        indexed = spec.get("completionMode") == "Indexed"
        procs = []
        for index in range(spec.get("completions", 1)):
            pod_id = f"{name}-{index}"
            volumes = {v["name"]: self.volume_dir(v, pod_id) for v in pod.get("volumes", [])}
            (c,) = pod["containers"]
            mounts = sorted(((m["mountPath"], volumes[m["name"]]) for m in c["volumeMounts"]),
                            key=lambda t: -len(t[0]))
            env = {"PATH": f"{self.ctx.build}:/usr/bin:/bin", "HOME": self.root}
            for e in c.get("env", []):
                if "value" in e:
                    env[e["name"]] = e["value"]
                else:
                    ref = e["valueFrom"]["configMapKeyRef"]
                    env[e["name"]] = self.configmaps[ref["name"]][ref["key"]]
            if indexed:
                env["JOB_COMPLETION_INDEX"] = str(index)
            argv = []
            for a in c["command"] + c.get("args", []):
                for path, local in mounts:
                    a = a.replace(path + "/", local + "/")
                argv.append(a)
            assert argv[:2] == ["/bin/sh", "-c"], argv
            procs.append((pod_id, subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                                   stderr=subprocess.PIPE, text=True)))
        for pod_id, p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, (pod_id, p.returncode, out[-2000:], err[-2000:])
        return os.path.join(self.claims, "ringfetch-data")


def test_k8s_jobs_run_as_local_pods(ctx):
    """The fetch Indexed Job's 4 pods, then the merge Job: the merged rows equal one
    whole-list run. The bench Indexed Job's 4 generators (START_AT 1.5 s ahead), then the
    bench-merge Job: one report of 4 generators, and its HTML page."""
    docs = load_manifests()
    urls = os.path.join(ctx.tmpdir, "urls.txt")
    n = write_url_list(ctx, urls)
    with open(urls) as f:
        url_text = f.read()
    pods = LocalPods(ctx, docs, {
        "ringfetch-urls": {"urls.txt": url_text},
        "ringfetch-bench": {"TARGET_URL": ctx.nginx.url("/"), "CONNECTIONS": "2",
                            "DURATION": "1s", "EXTRA_ARGS": "-t 1"},
    })
    data = pods.run_job("ringfetch-fetch")
    shards = sorted(os.listdir(os.path.join(data, "fetch", "shards")))
    assert shards == [f"shard-{k}.jsonl" for k in range(4)], shards
    for k in range(4):
        rows = read_rows(os.path.join(data, "fetch", "shards", f"shard-{k}.jsonl"))
        assert rows and all((r["line"] - 1) % 4 == k for r in rows), k
    pods.run_job("ringfetch-merge")
    assert_same_rows(read_rows(os.path.join(data, "fetch", "all.jsonl")),
                     single_run(ctx, urls), n)

    # START_AT as the operator sets it when starting the Job: 1.5 s ahead.
    pods.configmaps["ringfetch-bench"]["START_AT"] = f"{time.time() + 1.5:.6f}"
    pods.run_job("ringfetch-bench", timeout=30)
    gens = [json.load(open(os.path.join(data, "bench", f"gen-{k}.json"))) for k in range(4)]
    assert all(g["format"] == "ringfetch-bench/1" and g["requests"] > 0 for g in gens)
    assert all(g["connections"] == 2 and g["threads"] == 1 for g in gens)
    assert all(0 <= g["start_offset_us"] < 1e6 for g in gens), [g["start_offset_us"] for g in gens]
    pods.run_job("ringfetch-bench-merge")
    total = json.load(open(os.path.join(data, "bench", "total.json")))
    assert total["generators"] == 4
    assert total["requests"] == sum(g["requests"] for g in gens)
    with open(os.path.join(data, "bench", "total.html")) as f:
        assert f.read(15).lower() == "<!doctype html>"


# ----------------------------------------------------------------------------- Slurm


def slurm_env(task, lo, hi, job=4242):
    env = dict(os.environ)
    env.update(SLURM_ARRAY_JOB_ID=str(job), SLURM_JOB_ID=str(job + 1 + task - lo),
               SLURM_ARRAY_TASK_ID=str(task), SLURM_ARRAY_TASK_MIN=str(lo),
               SLURM_ARRAY_TASK_MAX=str(hi), SLURM_ARRAY_TASK_COUNT=str(hi - lo + 1))
    return env


def test_slurm_array_tasks_then_merge(ctx):
    """deploy/slurm/fetch-array.sbatch once per task id of --array=0-3 (four processes at
    once, the array variables as Slurm sets them), then merge.sbatch: the merged rows
    equal a single run's, timings and ip aside. Then an array numbered 1-3."""
    urls = os.path.join(ctx.tmpdir, "urls.txt")
    n = write_url_list(ctx, urls)
    single = single_run(ctx, urls)
    for lo, hi in ((0, 3), (1, 3)):
        out = os.path.join(ctx.tmpdir, f"out-{lo}-{hi}")
        env_base = {"RINGFETCH": ctx.ringfetch}
        procs = []
        for task in range(lo, hi + 1):
            env = slurm_env(task, lo, hi)
            env.update(env_base)
            procs.append(subprocess.Popen(
                ["/bin/bash", os.path.join(SLURM, "fetch-array.sbatch"), urls, out, "-c", "20"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for p in procs:
            o, e = p.communicate(timeout=60)
            assert p.returncode == 0, (p.returncode, o, e)
        names = sorted(os.listdir(out))
        assert names == [f"shard-{t}.jsonl" for t in range(lo, hi + 1)], names
        for task in range(lo, hi + 1):
            rows = read_rows(os.path.join(out, f"shard-{task}.jsonl"))
            assert all((r["line"] - 1) % (hi - lo + 1) == task - lo for r in rows), task
        env = dict(os.environ, **env_base)
        run_checked(["/bin/bash", os.path.join(SLURM, "merge.sbatch"), urls, out], env=env)
        assert_same_rows(read_rows(os.path.join(out, "all.jsonl")), single, n)

    # Outside an array the script refuses instead of fetching the whole list.
    r = subprocess.run(["/bin/bash", os.path.join(SLURM, "fetch-array.sbatch"), urls,
                        os.path.join(ctx.tmpdir, "none")], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if not k.startswith("SLURM_")})
    assert r.returncode != 0 and "SLURM_ARRAY_TASK_ID" in r.stderr, r.stderr


FAKE_SBATCH = r'''#!/usr/bin/python3
# sbatch stand-in: runs the job at once, here (an array's tasks as processes at the same
# time, with the variables Slurm sets), remembers each job's outcome, and honours
# --dependency=afterok:ID by running the job only if job ID succeeded.
import json, os, re, subprocess, sys
state = os.environ["FAKE_SLURM_STATE"]
args = sys.argv[1:]
opts = []
while args and args[0].startswith("-"):
    opts.append(args.pop(0))
script, script_args = args[0], args[1:]
jobs = sorted(int(f[4:]) for f in os.listdir(state) if f.startswith("job-"))
jid = jobs[-1] + 100 if jobs else 7000
array = dep = None
for o in opts:
    if o.startswith("--array="):
        array = o.split("=", 1)[1]
    elif o.startswith("--dependency="):
        dep = o.split("=", 1)[1]
with open(os.path.join(state, "calls.jsonl"), "a") as f:
    f.write(json.dumps({"job": jid, "opts": opts, "script": script, "args": script_args}) + "\n")
ok = True
if dep:
    kind, _, on = dep.partition(":")
    assert kind == "afterok", dep
    ok = open(os.path.join(state, f"job-{on}")).read() == "ok"
if ok:
    env = dict(os.environ, SLURM_JOB_ID=str(jid))
    if array:
        m = re.fullmatch(r"(\d+)-(\d+)(%\d+)?", array)
        lo, hi = int(m.group(1)), int(m.group(2))
        procs = [subprocess.Popen(["/bin/bash", script] + script_args, env=dict(
            env, SLURM_ARRAY_JOB_ID=str(jid), SLURM_ARRAY_TASK_ID=str(t),
            SLURM_ARRAY_TASK_MIN=str(lo), SLURM_ARRAY_TASK_MAX=str(hi),
            SLURM_ARRAY_TASK_COUNT=str(hi - lo + 1))) for t in range(lo, hi + 1)]
        ok = all(p.wait() == 0 for p in procs)
    else:
        ok = subprocess.run(["/bin/bash", script] + script_args, env=env).returncode == 0
with open(os.path.join(state, f"job-{jid}"), "w") as f:
    f.write("ok" if ok else "failed")
print(f"{jid};cluster" if "--parsable" in opts else f"Submitted batch job {jid}")
'''


def test_slurm_submit_script(ctx):
    """scripts/slurm-fetch.sh through a stand-in sbatch: an array of 3 tasks, then the
    merge with afterok on the array's job id; the merged rows equal a single run's."""
    urls = os.path.join(ctx.tmpdir, "urls.txt")
    n = write_url_list(ctx, urls)
    bindir = os.path.join(ctx.tmpdir, "bin")
    state = os.path.join(ctx.tmpdir, "slurm")
    os.makedirs(bindir)
    os.makedirs(state)
    with open(os.path.join(bindir, "sbatch"), "w") as f:
        f.write(FAKE_SBATCH)
    os.chmod(os.path.join(bindir, "sbatch"), 0o755)
    out = os.path.join(ctx.tmpdir, "out")
    env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"], FAKE_SLURM_STATE=state,
               RINGFETCH=ctx.ringfetch)
    r = run_checked([os.path.join(SCRIPTS, "slurm-fetch.sh"), "-n", "3", "-p", "2",
                     "--sbatch-opt", "--partition=test", urls, out, "-c", "10"],
                    env=env, cwd=ctx.tmpdir)
    assert r.stdout.strip() == f"slurm-fetch: array job 7000 (3 tasks), merge job 7100 -> {out}/all.jsonl", r.stdout
    calls = [json.loads(l) for l in open(os.path.join(state, "calls.jsonl"))]
    assert [c["opts"] for c in calls] == [
        ["--parsable", "--partition=test", "--array=0-2%2"],
        ["--parsable", "--partition=test", "--dependency=afterok:7000"]], calls
    assert [os.path.basename(c["script"]) for c in calls] == ["fetch-array.sbatch", "merge.sbatch"]
    assert calls[0]["args"] == [urls, out, "-c", "10"] and calls[1]["args"] == [urls, out]
    assert sorted(os.listdir(out)) == ["all.jsonl"] + [f"shard-{k}.jsonl" for k in range(3)]
    assert_same_rows(read_rows(os.path.join(out, "all.jsonl")), single_run(ctx, urls), n)


# ----------------------------------------------------------------------- GNU parallel

FAKE_SSH = r'''#!/bin/sh
# ssh stand-in for GNU parallel --ssh: each "host" is a directory of $FAKE_SSH_ROOT, the
# remote command runs there with bash -c, as ssh runs it in the login directory. Like
# sshd it sets SHELL (the login shell): parallel's remote wrapper runs the job with
# $SHELL, and the tests' own environment may not have it.
echo "$*" >>"$FAKE_SSH_ROOT/ssh.log"
while [ $# -gt 0 ]; do
    case $1 in
        -[bcDEeFIiJLlmOopQRSWw]) shift 2 ;;
        -*) shift ;;
        *) break ;;
    esac
done
host=${1#*@}
shift
[ "${1:-}" = -- ] && shift
export SHELL=/bin/bash
mkdir -p "$FAKE_SSH_ROOT/$host" && cd "$FAKE_SSH_ROOT/$host" && exec /bin/bash -c "$*"
'''


def fake_hosts(ctx):
    """(ssh command, root): the ssh stand-in and the directory holding one per host."""
    root = os.path.join(ctx.tmpdir, "hosts")
    os.makedirs(root, exist_ok=True)
    ssh = os.path.join(ctx.tmpdir, "fake-ssh")
    with open(ssh, "w") as f:
        f.write(FAKE_SSH)
    os.chmod(ssh, 0o755)
    return ssh, root


def ssh_log(root):
    """The stand-in's calls as (login, command): login is user@host when ssh had -l user."""
    out = []
    with open(os.path.join(root, "ssh.log")) as f:
        for line in f.read().splitlines():
            user = ""
            m = re.match(r"-l (\S+) (.*)", line)
            if m:
                user, line = m.group(1) + "@", m.group(2)
            host, _, command = line.partition(" ")
            out.append((user + host, command))
    return out


def test_parallel_fetch_over_ssh_hosts(ctx):
    """scripts/parallel-fetch.sh over two stand-in ssh hosts (hostA with one slot, hostB
    with two: three shards at once): the list is copied to each host, each shard file
    copied back and removed there, and the merged rows equal a single run's. Then the same
    with ":" (this machine)."""
    if not shutil.which("parallel") or not shutil.which("rsync"):
        raise AssertionError("GNU parallel and rsync are needed (scripts/setup installs them)")
    urls = os.path.join(ctx.tmpdir, "urls.txt")
    n = write_url_list(ctx, urls)
    single = single_run(ctx, urls)
    ssh, root = fake_hosts(ctx)
    env = dict(os.environ, FAKE_SSH_ROOT=root)
    out = os.path.join(ctx.tmpdir, "all.jsonl")
    r = run_checked([os.path.join(SCRIPTS, "parallel-fetch.sh"), "-S", "hostA,2/userb@hostB",
                     "--ssh", ssh, "--ringfetch", ctx.ringfetch, "-o", out, urls, "--",
                     "-c", "20"], env=env, cwd=ctx.tmpdir)
    assert "parallel-fetch: 3 shards over hostA,2/userb@hostB" in r.stderr, r.stderr
    assert f"parallel-fetch: {n} rows in {out}" in r.stderr, r.stderr
    assert_same_rows(read_rows(out), single, n)
    log = ssh_log(root)
    assert {login for login, _ in log} == {"hostA", "userb@hostB"}, log
    for host in ("hostA", "userb@hostB"):
        mine = [c for login, c in log if login == host]
        assert any("GNU_Parallel_worker" in c for c in mine), f"no job ran on {host}"
        assert any("rsync --server " in c and "--sender" not in c for c in mine), \
            f"the list was not copied to {host}"
        assert any("rsync --server --sender" in c for c in mine), f"nothing came back from {host}"
    assert os.listdir(os.path.join(root, "hostA")) == []  # --cleanup removed the copies
    assert os.listdir(os.path.join(root, "hostB")) == []
    shards = sorted(os.listdir(out + ".shards"))
    assert shards == ["joblog", "ringfetch-input.txt"] + [f"shard-{k}-of-3.jsonl" for k in range(3)]

    out2 = os.path.join(ctx.tmpdir, "local.jsonl")
    run_checked([os.path.join(SCRIPTS, "parallel-fetch.sh"), "-S", ":", "-j", "2", "-n", "5",
                 "--ringfetch", ctx.ringfetch, "-o", out2, urls], cwd=ctx.tmpdir)
    assert_same_rows(read_rows(out2), single, n)


test_parallel_fetch_over_ssh_hosts.timeout = 120


def test_parallel_distributed_bench_over_ssh_hosts(ctx):
    """scripts/distributed-bench.sh: two stand-in ssh hosts with two generators each, a
    common --start-at, the reports copied back and merged into total.json and total.html."""
    ssh, root = fake_hosts(ctx)
    d = os.path.join(ctx.tmpdir, "bench")
    env = dict(os.environ, FAKE_SSH_ROOT=root)
    r = run_checked([os.path.join(SCRIPTS, "distributed-bench.sh"), "-S", "hostA,hostB", "-g",
                     "2", "--start-in", "3", "--ssh", ssh, "--ringfetch", ctx.ringfetch,
                     "-d", d, "--", "-c", "2", "-d", "1s", ctx.nginx.url("/")], env=env,
                    cwd=ctx.tmpdir)
    assert "distributed-bench: 4 generators over hostA,hostB, starting at " in r.stderr, r.stderr
    gens = [json.load(open(os.path.join(d, f"gen-{k}.json"))) for k in range(4)]
    start_at = float(re.search(r"starting at (\d+\.\d+)", r.stderr).group(1))
    for g in gens:
        assert g["requests"] > 0 and g["errors"]["connect"] == 0, g["errors"]
        # Every generator started at the common time (its offset measured on its clock).
        assert abs(g["start_epoch_s"] - start_at - g["start_offset_us"] / 1e6) < 0.005
        assert 0 <= g["start_offset_us"] < 50000, g["start_offset_us"]
    total = json.load(open(os.path.join(d, "total.json")))
    assert total["generators"] == 4
    assert total["requests"] == sum(g["requests"] for g in gens)
    assert total["start_spread_s"] < 0.05, total["start_spread_s"]
    assert os.path.getsize(os.path.join(d, "total.html")) > 1000
    log = ssh_log(root)
    for host in ("hostA", "hostB"):
        assert sum(1 for h, c in log if h == host and "GNU_Parallel_worker" in c) == 2, host


test_parallel_distributed_bench_over_ssh_hosts.timeout = 90


# ------------------------------------------------- four generators, one start, merged


def bucket_highest(index):
    """The highest value of a bucket of the ringfetch-loglinear-v1 layout, from its
    definition (docs/cli.md): values 0..255 have a bucket each; above, each power of two
    [2^k, 2^(k+1)) is cut into 128 equal buckets, numbered on from 256."""
    if index < 256:
        return index
    k = 8 + (index - 256) // 128
    j = (index - 256) % 128
    width = (1 << k) // 128
    return (1 << k) + (j + 1) * width - 1


def percentile(buckets, p, maximum):
    """Nearest rank: the rank-th smallest sample (rank = ceil(p% of the count), at least 1)
    lies in some bucket; its highest value, but never above the exact maximum."""
    total = sum(buckets.values())
    rank = max(1, -(-fractions.Fraction(p) * total // 100))
    seen = 0
    for index in sorted(buckets):
        seen += buckets[index]
        if seen >= rank:
            return min(bucket_highest(index), maximum)
    raise AssertionError("rank beyond the count")


def pin_and_raise(cpu):
    """In a generator's child before exec: its CPU, and the CPU at its start time. Two
    generators share each CPU here (and the machine runs other work): at the start, the one
    that wakes second would wait for the first's burst of connects, a scheduler slice of up
    to 4 ms. SCHED_RR priority 1 (where allowed: root) lets each run as soon as its timer
    fires, as on a machine that runs only its generator; it blocks on the ring between
    completions, so nginx still runs. Else nice -10, else as it is."""
    os.sched_setaffinity(0, {cpu})
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
    except OSError:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, -10)
        except OSError:
            pass


def test_four_pinned_generators_start_together_and_merge(ctx):
    """Four `ringfetch bench` processes, each pinned to one CPU (round robin over those this
    machine allows; see pin_and_raise), started with one --start-at against one nginx,
    then bench-merge:
    the merged request count is the sum; the merged p50/p99/p99.9 are those of the union
    of the four histograms, recomputed here from the JSON buckets; the four starts lie
    within 5 ms of each other."""
    cpus = sorted(os.sched_getaffinity(0))
    url = ctx.nginx.url("/", 1)
    start_at = round(time.time() + 1.5, 6)
    procs = []
    for k in range(4):
        cpu = cpus[k % len(cpus)]
        p = subprocess.Popen([ctx.ringfetch, "bench", "-q", "-t", "1", "-c", "4", "-d", "1s",
                              "--start-at", f"{start_at:.6f}", "--json", url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda cpu=cpu: pin_and_raise(cpu))
        procs.append((cpu, p))
    paths = []
    for k, (cpu, p) in enumerate(procs):
        with open(f"/proc/{p.pid}/status") as f:
            allowed = re.search(r"^Cpus_allowed_list:\s*(\S+)", f.read(), re.M).group(1)
        assert allowed == str(cpu), (k, allowed, cpu)
    for k, (cpu, p) in enumerate(procs):
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, (k, p.returncode, err)
        paths.append(os.path.join(ctx.tmpdir, f"gen-{k}.json"))
        with open(paths[-1], "w") as f:
            f.write(out)
    gens = [json.load(open(path)) for path in paths]

    # Each generator: its histogram is whole, and this file's percentile agrees with its own.
    union = collections.Counter()
    for k, g in enumerate(gens):
        h = g["histogram"]
        assert h["layout"] == "ringfetch-loglinear-v1"
        b = collections.Counter({i: c for i, c in h["buckets"]})
        assert sum(b.values()) == h["count"] == g["requests"] > 0, (k, h["count"], g["requests"])
        assert g["errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0,
                               "non_2xx_3xx": 0}, g["errors"]
        for key, p in (("p50", "50"), ("p99", "99"), ("p999", "99.9")):
            assert g["latency_us"][key] == percentile(b, p, h["max"]), (k, key)
        union.update(b)

    # The starts: each generator's offset from the requested time, and their spread.
    starts = [g["start_epoch_s"] for g in gens]
    offsets = [g["start_offset_us"] for g in gens]
    for g in gens:
        # start_offset_us is measured on waking, start_epoch_s just after: the same instant
        # unless the process was preempted between the two.
        assert abs(g["start_epoch_s"] - (start_at + g["start_offset_us"] / 1e6)) < 0.005, \
            (g["start_epoch_s"], start_at, g["start_offset_us"])
    assert all(o >= 0 for o in offsets), offsets
    assert max(starts) - min(starts) <= 0.005, starts
    assert max(offsets) - min(offsets) <= 5000, offsets
    print(f"start offsets {offsets} us, spread {(max(starts) - min(starts)) * 1e6:.0f} us")

    merged_path = os.path.join(ctx.tmpdir, "merged.json")
    html = os.path.join(ctx.tmpdir, "merged.html")
    run_checked([ctx.ringfetch, "bench-merge"] + paths + ["-o", merged_path, "--html", html])
    m = json.load(open(merged_path))
    assert m["generators"] == 4
    assert m["requests"] == sum(g["requests"] for g in gens)
    assert m["status"] == {"200": m["requests"]}
    mh = m["histogram"]
    assert collections.Counter({i: c for i, c in mh["buckets"]}) == union
    assert mh["count"] == sum(union.values()) == m["requests"]
    assert mh["max"] == max(g["histogram"]["max"] for g in gens)
    assert mh["min"] == min(g["histogram"]["min"] for g in gens)
    for key, p in (("p50", "50"), ("p99", "99"), ("p999", "99.9")):
        assert m["latency_us"][key] == percentile(union, p, mh["max"]), (key, m["latency_us"])
    assert m["latency_us"]["max"] == mh["max"]
    print(f"merged: {m['requests']} requests = " + " + ".join(str(g["requests"]) for g in gens)
          + "; p50/p99/p99.9 " + "/".join(str(m["latency_us"][k]) for k in ("p50", "p99", "p999"))
          + " us, as recomputed from the union of the four histograms")
    assert abs(m["start_spread_s"] - (max(starts) - min(starts))) < 1e-5, m["start_spread_s"]
    assert abs(m["start_epoch_s"] - min(starts)) < 1e-5
    with open(html) as f:
        assert f.read(15).lower() == "<!doctype html>"


test_four_pinned_generators_start_together_and_merge.timeout = 60

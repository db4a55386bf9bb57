"""deploy/kubernetes/: valid for KubeRay and Kubernetes, and secure by default.

There is no Kubernetes cluster here, so these tests read the files. The RayCluster and the
RayJob are checked against KubeRay's own CRD schemas (the `v1` openAPIV3Schema of
../shared/schemas/kuberay/, made strict the way the API server's field validation is:
a field the schema does not know is an error). The other manifests are checked for what
secure defaults mean here: resource requests and limits on every container, non-root
pods without privilege escalation, nothing published beyond ClusterIP, every secret from
the Secret the user creates. `kubectl kustomize` renders the kustomization where kubectl is
installed. Nothing here applies the manifests to a cluster.
"""

from __future__ import annotations

import copy
import importlib.metadata
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.ci import skip_outside_ci
from tests.helpers.paths import REPO

K8S = REPO / "deploy" / "kubernetes"
SCHEMAS = REPO.parent / "shared" / "schemas" / "kuberay"
CRDS = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml"}
SECRET = "sweepscope"
# The keys of the Secret the user creates (docs/cluster.md shows the command).
SECRET_KEYS = {
    "postgres-password",
    "dashboard-db-password",
    "store-url",
    "dashboard-store-url",
    "auth_token",
    "dashboard-token",
}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) for every manifest: everything but kustomize's own files and
    the sweep spec the ConfigMap carries."""
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name in ("kustomization.yaml", "sweep.yaml"):
            continue
        found += [(path.name, doc) for doc in _documents(path)]
    return found


MANIFESTS = _manifests()


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in MANIFESTS if doc["kind"] == kind]


def _one(kind: str) -> dict[str, Any]:
    (doc,) = _by_kind(kind)
    return doc


def _pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, pod spec) of every pod the manifests make, KubeRay's included."""
    for _, doc in MANIFESTS:
        kind, name = doc["kind"], doc["metadata"].get("name") or doc["metadata"]["generateName"]
        spec = doc.get("spec", {})
        if kind in ("Deployment", "StatefulSet", "Job"):
            yield f"{kind}/{name}", spec["template"]["spec"]
        elif kind == "RayCluster":
            yield f"{kind}/{name} head", spec["headGroupSpec"]["template"]["spec"]
            for group in spec["workerGroupSpecs"]:
                yield f"{kind}/{name} {group['groupName']}", group["template"]["spec"]
        elif kind == "RayJob":
            yield f"{kind}/{name} submitter", spec["submitterPodTemplate"]["spec"]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _secret_ref(entry: dict[str, Any]) -> tuple[str, str] | None:
    ref = entry.get("valueFrom", {}).get("secretKeyRef")
    return (ref["name"], ref["key"]) if ref else None


def _ray_containers() -> list[tuple[str, dict[str, Any]]]:
    cluster = _one("RayCluster")["spec"]
    groups = [("head", cluster["headGroupSpec"])] + [
        (g["groupName"], g) for g in cluster["workerGroupSpecs"]
    ]
    return [(name, c) for name, g in groups for c in g["template"]["spec"]["containers"]]


# -- KubeRay's schemas ---------------------------------------------------------------------
def _strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever it lists an object's fields, as the
    API server's strict field validation (kubectl's default) refuses them; objects marked
    x-kubernetes-preserve-unknown-fields keep accepting anything."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def validators() -> dict[str, Any]:
    if not SCHEMAS.is_dir():
        skip_outside_ci(f"KubeRay's CRD schemas are not at {SCHEMAS} (../shared/schemas/kuberay)")
    import jsonschema

    found = {}
    for kind, file in CRDS.items():
        # 2 MB of YAML each: libyaml's loader where PyYAML has it (seconds, not a minute).
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        crd = yaml.load((SCHEMAS / file).read_text(), Loader=loader)  # a safe loader
        assert crd["spec"]["names"]["kind"] == kind
        (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        found[kind] = jsonschema.Draft7Validator(_strict(v1["schema"]["openAPIV3Schema"]))
    return found


def _errors(validators: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validators[doc["kind"]].iter_errors(doc)
    ]


def test_every_kuberay_manifest_matches_kuberays_schema(validators: dict[str, Any]) -> None:
    checked = []
    for name, doc in MANIFESTS:
        if doc["kind"] in CRDS:
            assert doc["apiVersion"] == "ray.io/v1", name
            errors = _errors(validators, doc)
            assert not errors, f"{name}:\n" + "\n".join(errors)
            checked.append(doc["kind"])
    assert sorted(checked) == ["RayCluster", "RayJob"]


@pytest.mark.parametrize(
    ("kind", "path", "bad"),
    [
        ("RayCluster", ["spec", "workerGroupSpecs", 0, "replica"], 2),  # a misspelt field
        ("RayCluster", ["spec", "workerGroupSpecs", 1, "replicas"], "none"),  # a wrong type
        ("RayCluster", ["spec", "authOptions", "mode"], "on"),  # not in the enum
        ("RayCluster", ["spec", "headGroupSpec", "template", "spec", "containerz"], []),
        ("RayJob", ["spec", "submitterPodTemplate", "spec", "restartPolicy"], 3),
        ("RayJob", ["spec", "entrypointt"], "sweepscope run x.yaml"),
    ],
)
def test_the_schema_check_catches_a_broken_manifest(
    validators: dict[str, Any], kind: str, path: list[Any], bad: Any
) -> None:
    doc = copy.deepcopy(_one(kind))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = bad
    assert _errors(validators, doc), f"{kind} with {path} = {bad!r} passed the schema"


# -- the kustomization ---------------------------------------------------------------------
def test_kustomization_lists_every_manifest_but_the_rayjob() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "sweep.yaml"}
    # The RayJob is a template submitted with `kubectl create -f`: one job per submission.
    assert listed == (files - {"rayjob.yaml"}) | {"../postgres"}
    assert "generateName" in _one("RayJob")["metadata"]
    (sweeps,) = kustomization["configMapGenerator"]
    assert sweeps["name"] == "sweepscope-sweeps" and sweeps["files"] == ["sweep.yaml"]
    # The init script stays where compose mounts it; deploy/postgres makes the ConfigMap.
    postgres = yaml.safe_load((REPO / "deploy" / "postgres" / "kustomization.yaml").read_text())
    (initdb,) = postgres["configMapGenerator"]
    assert initdb["files"] == ["initdb/10-dashboard-role.sh"]
    assert (REPO / "deploy" / "postgres" / "initdb" / "10-dashboard-role.sh").is_file()
    for generated in (kustomization, postgres):
        # Fixed names: the Ray head and postgres mount them by name.
        assert generated["generatorOptions"]["disableNameSuffixHash"] is True


def test_kubectl_kustomize_renders_it() -> None:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        skip_outside_ci("kubectl is not installed: the kustomization is not rendered")
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in rendered)
    assert kinds == [
        "ConfigMap/sweepscope-postgres-initdb",
        "ConfigMap/sweepscope-sweeps",
        "Deployment/sweepscope-dashboard",
        "Job/sweepscope-migrate",
        "PersistentVolumeClaim/sweepscope-shared",
        "RayCluster/sweepscope",
        "Service/sweepscope-dashboard",
        "Service/sweepscope-postgres",
        "StatefulSet/sweepscope-postgres",
    ]
    by_name = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "ConfigMap"}
    script = (REPO / "deploy" / "postgres" / "initdb" / "10-dashboard-role.sh").read_text()
    assert by_name["sweepscope-postgres-initdb"]["data"]["10-dashboard-role.sh"] == script
    assert by_name["sweepscope-sweeps"]["data"]["sweep.yaml"] == (K8S / "sweep.yaml").read_text()
    assert all(
        d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "sweepscope" for d in rendered
    )


# -- secure defaults -----------------------------------------------------------------------
def test_every_container_has_requests_and_limits() -> None:
    seen = 0
    for where, pod in _pod_specs():
        for container in pod.get("initContainers", []) + pod["containers"]:
            resources = container.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(part, {})), (
                    f"{where} {container['name']}: no {part} for cpu and memory"
                )
            seen += 1
    assert seen == 7  # postgres, migrate, dashboard, Ray head, CPU and GPU workers, submitter


def test_every_pod_runs_as_non_root_without_privileges() -> None:
    for where, pod in _pod_specs():
        security = pod.get("securityContext", {})
        assert security.get("runAsNonRoot") is True, where
        assert security.get("runAsUser", 0) != 0, where
        assert security.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert pod.get("automountServiceAccountToken") is False, where
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(flag), f"{where}: {flag}"
        assert not [v for v in pod.get("volumes", []) if "hostPath" in v], where
        for container in pod["containers"]:
            own = container.get("securityContext", {})
            assert own.get("allowPrivilegeEscalation") is False, where
            assert own.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not own.get("privileged"), where
            assert own.get("runAsUser", 1) != 0, where
            assert not [p for p in container.get("ports", []) if "hostPort" in p], where


def test_nothing_is_published_beyond_clusterip() -> None:
    kinds = {doc["kind"] for _, doc in MANIFESTS}
    assert not kinds & {"Ingress", "Route", "Gateway", "HTTPRoute"}
    services = _by_kind("Service")
    assert {s["metadata"]["name"] for s in services} == {
        "sweepscope-dashboard",
        "sweepscope-postgres",
    }
    for service in services:
        spec = service["spec"]
        assert spec.get("type", "ClusterIP") == "ClusterIP", service["metadata"]["name"]
        assert not spec.get("externalIPs") and not spec.get("loadBalancerIP")
        assert all("nodePort" not in p for p in spec["ports"])
    cluster = _one("RayCluster")["spec"]
    assert cluster["headGroupSpec"].get("serviceType", "ClusterIP") == "ClusterIP"
    assert "headServiceAnnotations" not in cluster


def test_secrets_come_only_from_the_users_secret() -> None:
    """No Secret and no password in the files; every reference is to a documented key of
    the Secret `sweepscope`, and docs/cluster.md's command creates exactly those keys."""
    assert not _by_kind("Secret")
    text = "\n".join(p.read_text() for p in K8S.glob("*.yaml"))
    assert not re.search(r"postgres(ql)?(\+\w+)?://[^@\s]*:[^@\s]*@", text), "a URL with a password"
    used = set()
    for where, pod in _pod_specs():
        for container in pod["containers"]:
            for name, entry in _env(container).items():
                ref = _secret_ref(entry)
                if ref:
                    assert ref[0] == SECRET, f"{where}: {name} from Secret {ref[0]}"
                    used.add(ref[1])
                elif re.search(r"PASSWORD|TOKEN|STORE$", name):
                    pytest.fail(f"{where}: {name} is set in the file, not from the Secret")
    assert used == SECRET_KEYS
    cluster = _one("RayCluster")["spec"]
    assert cluster["authOptions"]["secretName"] == SECRET  # its key must be `auth_token`
    docs = (REPO / "docs" / "cluster.md").read_text()
    command = re.search(r"kubectl create secret generic sweepscope(.*?)\n\n", docs, re.S)
    assert command, "docs/cluster.md shows no `kubectl create secret generic sweepscope`"
    assert set(re.findall(r"--from-literal=([\w-]+)=", command.group(1))) == SECRET_KEYS


def test_ray_runs_with_token_authentication_everywhere() -> None:
    assert _one("RayCluster")["spec"]["authOptions"]["mode"] == "token"
    containers = _ray_containers()
    submitter = _one("RayJob")["spec"]["submitterPodTemplate"]["spec"]["containers"]
    for where, container in containers + [("submitter", c) for c in submitter]:
        env = _env(container)
        assert env["RAY_AUTH_MODE"]["value"] == "token", where
        assert _secret_ref(env["RAY_AUTH_TOKEN"]) == (SECRET, "auth_token"), where
    for where, container in containers:
        assert _env(container)["RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO"]["value"] == "1", where


def test_the_dashboard_connects_as_its_own_role() -> None:
    (dashboard,) = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    env = _env(dashboard)
    assert _secret_ref(env["SWEEPSCOPE_STORE"]) == (SECRET, "dashboard-store-url")
    assert _secret_ref(env["SWEEPSCOPE_TOKEN"]) == (SECRET, "dashboard-token")
    assert {k for _, k in filter(None, map(_secret_ref, env.values()))} == {
        "dashboard-store-url",
        "dashboard-token",
    }
    assert dashboard["args"][:2] == ["sweepscope", "dashboard"]
    # The role postgres creates at its first start is the one migrate grants.
    (postgres,) = _one("StatefulSet")["spec"]["template"]["spec"]["containers"]
    role = _env(postgres)["DASHBOARD_DB_USER"]["value"]
    (migrate,) = _one("Job")["spec"]["template"]["spec"]["containers"]
    assert migrate["args"][:2] == ["sweepscope", "migrate"]
    assert migrate["args"][migrate["args"].index("--grant-dashboard") + 1] == role
    assert _secret_ref(_env(migrate)["SWEEPSCOPE_STORE"]) == (SECRET, "store-url")
    assert "--store" not in migrate["args"]  # the URL stays out of the command line
    # The init script comes from the ConfigMap deploy/postgres makes.
    volumes = {v["name"]: v for v in _one("StatefulSet")["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in postgres["volumeMounts"]}
    initdb = volumes[mounts["/docker-entrypoint-initdb.d"]]
    assert initdb["configMap"]["name"] == "sweepscope-postgres-initdb"
    assert (
        _one("StatefulSet")["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
        == mounts["/var/lib/postgresql/data"]
    )


def test_only_the_head_holds_the_store_url() -> None:
    for where, container in _ray_containers():
        refs = {k for _, k in filter(None, map(_secret_ref, _env(container).values()))}
        assert refs == ({"store-url", "auth_token"} if where == "head" else {"auth_token"}), where


# -- the Ray cluster and the sweep ---------------------------------------------------------
def test_worker_groups_cpu_and_gpu() -> None:
    groups = {g["groupName"]: g for g in _one("RayCluster")["spec"]["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    assert groups["cpu"]["replicas"] >= 1
    assert groups["gpu"]["replicas"] == 0 and groups["gpu"]["minReplicas"] == 0
    (gpu,) = groups["gpu"]["template"]["spec"]["containers"]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    (cpu,) = groups["cpu"]["template"]["spec"]["containers"]
    assert "nvidia.com/gpu" not in cpu["resources"]["limits"]
    head = _one("RayCluster")["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # trials run on the workers


def test_every_ray_pod_shares_the_checkpoint_volume() -> None:
    (claim,) = _by_kind("PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    cluster = _one("RayCluster")["spec"]
    templates = [cluster["headGroupSpec"]["template"]] + [
        g["template"] for g in cluster["workerGroupSpecs"]
    ]
    for template in templates:
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        (container,) = template["spec"]["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        shared = volumes[mounts["/shared"]]
        assert shared["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    (head,) = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    assert _env(head)["SWEEPSCOPE_STORAGE_PATH"]["value"].startswith("/shared/")


def test_rayjob_runs_the_configmap_spec_on_the_cluster() -> None:
    job = _one("RayJob")["spec"]
    assert job["clusterSelector"] == {"ray.io/cluster": _one("RayCluster")["metadata"]["name"]}
    assert not job.get("shutdownAfterJobFinishes")  # the shared cluster outlives the job
    words = job["entrypoint"].split()
    assert words[:2] == ["sweepscope", "run"]
    assert words[words.index("--address") + 1] == "auto"  # the cluster the job runs on
    storage = words[words.index("--storage-path") + 1]
    assert storage.startswith("/shared/")
    assert "--store" not in words  # from SWEEPSCOPE_STORE on the head: Ray shows entrypoints
    spec_path = Path(words[2])
    cluster = _one("RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]
    (head,) = cluster["containers"]
    mounts = {m["mountPath"]: m["name"] for m in head["volumeMounts"]}
    volumes = {v["name"]: v for v in cluster["volumes"]}
    assert volumes[mounts[str(spec_path.parent)]]["configMap"]["name"] == "sweepscope-sweeps"
    assert (K8S / spec_path.name).is_file()


def test_the_configmap_spec_is_a_valid_sweep() -> None:
    from runner.spec import load_spec

    spec = load_spec(str(K8S / "sweep.yaml"))
    shipped = yaml.safe_load((REPO / "experiments" / "sweeps" / "seed_grid.yaml").read_text())
    assert yaml.safe_load((K8S / "sweep.yaml").read_text()) == shipped
    assert spec.n_trials == 18


# -- versions ------------------------------------------------------------------------------
def test_image_and_ray_versions_match_the_projects() -> None:
    from packaging.requirements import Requirement

    ray_version = _one("RayCluster")["spec"]["rayVersion"]
    # The image KubeRay runs pins that Ray ...
    dockerfile = (K8S / "Dockerfile").read_text()
    pinned = re.search(r"^ARG RAY_VERSION=(\S+)$", dockerfile, re.M)
    assert pinned and pinned.group(1) == ray_version
    assert '"ray[default]==${RAY_VERSION}"' in dockerfile
    # ... which pyproject allows and the project's tests run with.
    pyproject = (REPO / "pyproject.toml").read_text()
    (ray_req,) = [
        Requirement(r) for r in re.findall(r'"(ray\[[^"]*)"', pyproject) if r.startswith("ray[")
    ]
    assert ray_req.specifier.contains(ray_version), f"{ray_version} is not {ray_req}"
    installed = importlib.metadata.version("ray")
    # Ray refuses to join versions that differ; a patch release of the same minor is allowed.
    assert ray_version.split(".")[:2] == installed.split(".")[:2], (
        f"raycluster.yaml and deploy/kubernetes/Dockerfile pin Ray {ray_version}, the tests "
        f"run Ray {installed}: update rayVersion and RAY_VERSION together"
    )
    # The image is built from the project's own image, under the project's name.
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    project_image = compose["services"]["ray-head"]["image"]
    base = re.search(r"^ARG BASE=(\S+)$", dockerfile, re.M)
    assert base and base.group(1) == project_image
    repository = project_image.split(":")[0]
    images = {c["image"] for _, pod in _pod_specs() for c in pod["containers"]}
    postgres_image = compose["services"]["postgres"]["image"]
    assert images == {f"{repository}:kuberay", postgres_image}
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert [i["name"] for i in kustomization["images"]] == [repository]

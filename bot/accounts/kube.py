"""Kubernetes manifests for a desk, rendered from a values file (`p2pbot desk kube VALUES`).

Per account: a ConfigMap with its p2pbot.toml, a headless Service, and a StatefulSet of
one replica (a StatefulSet never runs two pods of one ordinal, so one key is never
used twice) with a volume for the store, the key in a Secret mounted as files (the
`*_FILE` variables), liveness on /healthz, readiness on /readyz (with the bearer
token: an exec probe, `p2pbot desk ready`, since an httpGet probe cannot read a
Secret), Prometheus scrape annotations, and a non-root, read-only container.

Why a renderer and not Helm: the values are validated by the same kind of pydantic
model as the bot's own config (a bad value names its field), the output is plain JSON
that `kubectl apply -f -` takes, and tests render and validate it offline with no
Helm binary or chart repository. The Secrets are not rendered: they hold the keys
and are made by `kubectl create secret` (docs/operations.md).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.accounts.layout import check_name
from config.loader import AdLoadError, ConfigFileError, load_config

UID = 10001  # the image's user (deploy/Containerfile); also the pod's fsGroup
SECRETS = "/run/secrets/p2pbot"
CONFIG_DIR = "/etc/p2pbot"
STATE_DIR = "/var/lib/p2pbot"
RUNTIME_DIR = "/run/p2pbot"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"
KubeName = Annotated[str, Field(pattern=DNS_LABEL)]
Quantity = Annotated[str, Field(pattern=QUANTITY)]
Seconds = Annotated[int, Field(ge=1, le=3600)]


class RenderError(Exception):
    """The values cannot be rendered: the message names the file and the field."""


class _Values(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Values):
    """Requests and limits of each account's container."""

    cpu_request: Quantity = "50m"
    memory_request: Quantity = "128Mi"
    cpu_limit: Quantity = "1"
    memory_limit: Quantity = "512Mi"


class AccountValues(_Values):
    """One `[[accounts]]` entry."""

    name: str
    secret: KubeName  # a Secret with the keys api_key, api_secret, web_token
    config: Path  # its p2pbot.toml, relative to the values file
    storage: Quantity | None = None  # the store's volume (default: the top-level storage)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(DNS_LABEL, value) or len(value) > 40:
            raise ValueError(f"{value!r}: lower-case letters, digits and '-', at most 40 "
                             "(it names the StatefulSet, the Service and the pod)")
        return check_name(value)


class Values(_Values):
    """The whole values file."""

    namespace: KubeName = "p2pbot"
    image: str = Field(min_length=1)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    port: int = Field(8080, ge=1, le=65535)  # every account's [web] port inside its pod
    storage: Quantity = "1Gi"
    storage_class: str | None = Field(None, min_length=1)
    probe_interval: Seconds = 10  # seconds between liveness probes
    ready_interval: Seconds = 15  # seconds between readiness probes (an exec: a process each)
    probe_timeout: Seconds = 5
    resources: Resources = Field(default_factory=Resources)
    accounts: list[AccountValues] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> Values:
        seen: set[str] = set()
        for account in self.accounts:
            if account.name in seen:
                raise ValueError(f"two accounts are named {account.name!r}")
            seen.add(account.name)
        return self


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_values(path: Path) -> Values:
    """The values file, validated; RenderError naming the file and each bad field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RenderError(f"{path}: {exc}") from None
    try:
        return Values.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors())
        raise RenderError(f"{path}: {problems}") from None


def account_config(values_file: Path, account: AccountValues, values: Values, i: int) -> str:
    """The account's p2pbot.toml text; its [web] must listen on the pod's address and port."""
    path = account.config if account.config.is_absolute() else values_file.parent / account.config
    where = f"{values_file}: accounts[{i}].config"
    try:
        text = path.read_text(encoding="utf-8")
        web = tomllib.loads(text).get("web", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RenderError(f"{where}: {path}: {exc}") from None
    if web.get("host") not in ("0.0.0.0", "::"):
        raise RenderError(f"{where}: {path}: [web] host must be \"0.0.0.0\" in a pod (the kubelet "
                          "and Prometheus reach it on the pod's address; the token guards it)")
    if web.get("port", 8080) != values.port:
        raise RenderError(f"{where}: {path}: [web] port must be {values.port} (the values' port)")
    try:
        load_config(path)  # the pod would exit 2 on it: say so now
    except (ConfigFileError, AdLoadError) as exc:
        raise RenderError(f"{where}: {exc}") from None
    return text


def _labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "p2pbot", "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": "account"}


def _env(values: Values) -> list[dict[str, str]]:
    pairs = {"P2PBOT_CONFIG": f"{CONFIG_DIR}/p2pbot.toml", "P2PBOT_DB": f"{STATE_DIR}/p2pbot.db",
             "P2PBOT_API_KEY_FILE": f"{SECRETS}/api_key",
             "P2PBOT_API_SECRET_FILE": f"{SECRETS}/api_secret",
             "P2PBOT_WEB_TOKEN_FILE": f"{SECRETS}/web_token",
             "P2PBOT_SECRET_GROUP": str(UID), "XDG_RUNTIME_DIR": RUNTIME_DIR,
             "HOME": RUNTIME_DIR, "PYTHONDONTWRITEBYTECODE": "1"}
    return [{"name": k, "value": v} for k, v in pairs.items()]


def _container(values: Values) -> dict[str, Any]:
    r = values.resources
    ready = ["p2pbot", "desk", "ready", f"http://127.0.0.1:{values.port}",
             "--token-file", f"{SECRETS}/web_token", "--timeout", str(values.probe_timeout)]
    return {
        "name": "p2pbot", "image": values.image, "imagePullPolicy": values.image_pull_policy,
        "args": ["--log-format", "json", "run"], "env": _env(values),
        "ports": [{"name": "web", "containerPort": values.port, "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "web"},
                          "periodSeconds": values.probe_interval,
                          "timeoutSeconds": values.probe_timeout, "failureThreshold": 3,
                          "initialDelaySeconds": 10},
        "readinessProbe": {"exec": {"command": ready}, "periodSeconds": values.ready_interval,
                           "timeoutSeconds": values.probe_timeout + 5, "failureThreshold": 2},
        "resources": {"requests": {"cpu": r.cpu_request, "memory": r.memory_request},
                      "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID,
                            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                         {"name": "secrets", "mountPath": SECRETS, "readOnly": True},
                         {"name": "store", "mountPath": STATE_DIR},
                         {"name": "runtime", "mountPath": RUNTIME_DIR},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }


def stateful_set(values: Values, account: AccountValues) -> dict[str, Any]:
    """One account's StatefulSet: one replica, its store on its own volume."""
    name = f"p2pbot-{account.name}"
    claim: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": account.storage or values.storage}}}
    if values.storage_class is not None:
        claim["storageClassName"] = values.storage_class
    pod = {
        "metadata": {"labels": _labels(account.name), "annotations": {
            "prometheus.io/scrape": "true", "prometheus.io/port": str(values.port),
            "prometheus.io/path": "/metrics"}},
        "spec": {
            "automountServiceAccountToken": False, "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 30,
            "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID,
                                "fsGroup": UID, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [_container(values)],
            "volumes": [
                {"name": "config", "configMap": {"name": f"{name}-config"}},
                {"name": "secrets", "secret": {"secretName": account.secret, "defaultMode": 0o440,
                                               "items": [{"key": k, "path": k} for k in
                                                         ("api_key", "api_secret", "web_token")]}},
                {"name": "runtime", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            ],
        },
    }
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": values.namespace, "labels": _labels(account.name)},
            "spec": {"replicas": 1, "serviceName": name,
                     "selector": {"matchLabels": _labels(account.name)},
                     "podManagementPolicy": "OrderedReady",
                     "updateStrategy": {"type": "RollingUpdate"}, "template": pod,
                     "volumeClaimTemplates": [{"metadata": {"name": "store"}, "spec": claim}]}}


def service(values: Values, account: AccountValues) -> dict[str, Any]:
    """The headless Service the StatefulSet names (and Prometheus may discover)."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"p2pbot-{account.name}", "namespace": values.namespace,
                         "labels": _labels(account.name)},
            "spec": {"clusterIP": "None", "selector": _labels(account.name),
                     "ports": [{"name": "web", "port": values.port, "targetPort": "web"}]}}


def config_map(values: Values, account: AccountValues, text: str) -> dict[str, Any]:
    """The account's p2pbot.toml."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"p2pbot-{account.name}-config", "namespace": values.namespace,
                         "labels": _labels(account.name)},
            "data": {"p2pbot.toml": text}}


def manifests(values_file: Path) -> list[dict[str, Any]]:
    """Every object for every account; RenderError naming the field when a value is bad."""
    values = load_values(values_file)
    items: list[dict[str, Any]] = []
    for i, account in enumerate(values.accounts):
        text = account_config(values_file, account, values, i)
        items += [config_map(values, account, text), service(values, account),
                  stateful_set(values, account)]
    return items


def manifest_json(items: list[dict[str, Any]]) -> str:
    """A `kind: List` document for `kubectl apply -f -`."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2) + "\n"

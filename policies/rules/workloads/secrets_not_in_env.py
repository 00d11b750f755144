"""secrets-not-in-env: Secrets are not passed as literal environment values (pods and ECS task definitions)."""

from __future__ import annotations

import re

from policies.model import (
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail_all,
)
from policies.props import maps, text
from policies.rule import Fixture, M, resource_rule
from policies.rules.workloads import ECS_TASK, _each_container, ecs_containers

SECRET_NAME = re.compile(r"(PASSW(OR)?D|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL|ACCESS_?KEY)", re.I)


def secrets_not_in_env(r: Resource, s: Settings) -> Outcome:
    items = _each_container(r) if r.type != ECS_TASK else ecs_containers(r)
    if items is None:
        return NOT_APPLICABLE
    out = []
    for name, c in items:
        # Kubernetes: env[].value; ECS: environment[].value (the secrets[] list holds references instead).
        for env in [*maps(c.get("env")), *maps(c.get("environment"))]:
            var = text(env.get("name")) or "?"
            value = env.get("value")
            if value is None:
                continue
            if value == "[secret]" or SECRET_NAME.search(var):
                fix = ("secrets[].valueFrom (Secrets Manager or SSM)" if r.type == ECS_TASK
                       else "valueFrom.secretKeyRef")
                out.append(f"container {name} env {var} holds a literal secret; use {fix}")
    return fail_all(out)


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, T_ECS, bad, ok

    r = b.res
    _ecs = b.ecs_task
    return [
        ok("secret-ref", r(T_DEP, b.deployment(pod={"containers": [b.container(env=[
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "LOG_LEVEL", "value": "info"}])]}))),
        bad("literal-password", r(T_DEP, b.deployment(pod={"containers": [b.container(env=[
            {"name": "DB_PASSWORD", "value": "hunter2"}])]}))),
        bad("pulumi-secret", r(T_DEP, b.deployment(pod={"containers": [b.container(env=[
            {"name": "CONFIG", "value": "[secret]"}])]}))),
        ok("ecs-secrets-list", r(T_ECS, _ecs({"name": "web", "image": "nginx:1.27", "secrets": [
            {"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:db"}],
            "environment": [{"name": "LOG_LEVEL", "value": "info"}]}))),
        bad("ecs-env-password", r(T_ECS, _ecs({"name": "web", "image": "nginx:1.27", "environment": [
            {"name": "DB_PASSWORD", "value": "hunter2"}]}))),
        bad("ecs-env-masked-secret", r(T_ECS, _ecs(
            {"name": "web", "image": "nginx:1.27", "environment": [{"name": "DSN", "value": "[secret]"}]}))),
    ]


RULE = resource_rule(
    "secrets-not-in-env", secrets_not_in_env,
    category="workloads",
    level=M,
    description="Secrets are not passed as literal environment values (pods and ECS task definitions).",
    remediation="Use env[].valueFrom.secretKeyRef or a mounted Secret; on ECS, containerDefinitions[].secrets.",
    fixtures=fixtures,
)

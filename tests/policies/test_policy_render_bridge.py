"""From a rendered graph to rule views: provider props, ignoreChanges and dependencies reach the rules."""

from __future__ import annotations

import datetime as dt

import pulumi

from infra.render import render_callable
from policies import fixtures as b
from policies.config import PolicyConfig
from policies.engine import FindingStatus, evaluate, resources_from_render
from policies.model import TierName


def _program() -> None:
    import pulumi_aws as aws
    import pulumi_kubernetes as k8s

    tagged = aws.Provider("tagged", region="us-east-1", default_tags={"tags": b.TAGS})
    aws.kms.Key("key", enable_key_rotation=True, opts=pulumi.ResourceOptions(provider=tagged))
    aws.kms.Key("bare", enable_key_rotation=True)
    ns = k8s.Provider("apps", namespace="apps", kubeconfig="{}")
    k8s.core.v1.ConfigMap("settings", data={"a": "b"}, opts=pulumi.ResourceOptions(provider=ns))
    k8s.core.v1.ConfigMap("stray", data={"a": "b"})


def test_provider_props_and_defaults_reach_the_rules() -> None:
    result = render_callable(_program, project="bridge", stack="dev")
    views = {v.name: v for v in resources_from_render(result)}
    # The engine sends object-valued provider settings as JSON text; the bridge decodes them.
    assert views["key"].provider_props["defaultTags"] == {"tags": b.TAGS}
    findings = evaluate(list(views.values()), b.settings(TierName.PROD), PolicyConfig().levels(TierName.PROD),
                        today=dt.date(2026, 11, 27))
    failing = {(f.policy, f.name) for f in findings if f.status is FindingStatus.VIOLATION}
    # Provider default tags and the provider's namespace count; the resources without them fail.
    assert ("cloud-required-tags", "bare") in failing and ("cloud-required-tags", "key") not in failing
    assert ("no-default-namespace", "stray") in failing and ("no-default-namespace", "settings") not in failing

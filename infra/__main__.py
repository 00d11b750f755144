"""The Gantry Pulumi program (`pulumi up -s <stack>`): load the stack config, build the platform, export outputs."""

import pulumi

from infra import plugins
from infra.config import load_from_engine
from infra.platform import build_platform

plugins.load()
for key, value in build_platform(load_from_engine()).items():
    pulumi.export(key, value)

"""CrossGuard entry point: ``pulumi preview --policy-pack policies`` runs this file, which serves the pack.

Constructing ``PolicyPack`` starts a gRPC server and never returns, so everything else lives in
importable modules (``policies.crossguard`` and the rules).
"""

import sys
from pathlib import Path

# The analyzer runs this file as a script with policies/ on sys.path; the package root must be there too.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.config import load_policy_config
from policies.crossguard import build_policies, pack_tier, stack_policy
from policies.pack import PACK_NAME
from policies.waivers import DEFAULT_PATH, load_waivers

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=build_policies(load_policy_config(), pack_tier(), stack_policy(),
                            load_waivers(DEFAULT_PATH if DEFAULT_PATH.is_file() else None)),
    description="Gantry: secure clusters, keys, workloads and delivery; the same rules as `gantry check`.",
)

"""The rule registry: one module per rule under ``policies/rules/<category>/``, each defining ``RULE``.

``discover()`` imports every module of every category package and returns their rules, ordered by category
(``CATEGORIES`` first, then any new category alphabetically) and id. Nothing else lists the rules: the pack,
the policy config, the README table and the meta-tests all derive from this.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from policies.rule import Rule

CATEGORIES = ("aws", "gcp", "azure", "clusters", "keys", "autoscaling", "exposure", "labels", "workloads",
              "delivery", "cost", "secrets", "stateful", "dr")
"""Category packages in the order reports list them; a package not listed here comes after, by name."""


@functools.cache
def discover() -> tuple[Rule, ...]:
    """Every ``RULE`` of every rule module, in a stable order; a module without ``RULE`` is an error."""
    from policies.rule import Rule

    packages = sorted((info.name for info in pkgutil.iter_modules(__path__) if info.ispkg),
                      key=lambda name: (CATEGORIES.index(name) if name in CATEGORIES else len(CATEGORIES), name))
    rules: list[Rule] = []
    for package in packages:
        pkg = importlib.import_module(f"{__name__}.{package}")
        found: list[Rule] = []
        for info in pkgutil.iter_modules(pkg.__path__):
            module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            rule = getattr(module, "RULE", None)
            if not isinstance(rule, Rule):
                raise TypeError(f"{module.__name__} must define RULE (resource_rule or stack_rule), but it does not")
            category = getattr(pkg, "CATEGORY", package)
            if rule.category != category:
                raise TypeError(f"{module.__name__}: RULE.category must be {category!r} (its package's CATEGORY), "
                                f"but {rule.category!r} was given")
            found.append(rule)
        rules += sorted(found, key=lambda r: r.id)
    return tuple(rules)

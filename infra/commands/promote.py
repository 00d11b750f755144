"""`gantry promote --from S --to T --service NAME`: roll out on T the version S runs and verified.

Thin: reads the version from the source stack's outputs (through its rollout target) and its journal
(``infra.rollout.gitops.verified_version``), refuses in one line when the source's last rollout of the
service did not promote (exit 2) or has not ended (exit 3), then starts the rollout on the destination
with the rollout CLI's own parts. Exit codes are the rollout's: 0 promoted, 1 rolled back, 2 usage or
input error (a refusal included), 3 stack locked or the source still rolling out, 4 rollback failed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from infra.commands.common import fail, out
from infra.console import plain
from infra.errors import ExitCode, InputError


def register(app: typer.Typer) -> None:
    """Add ``gantry promote``."""

    @app.command(name="promote")
    def promote(
        source: Annotated[str, typer.Option("--from", help="Stack whose verified version is promoted, e.g. staging.")],
        destination: Annotated[str, typer.Option("--to", help="Stack the version is rolled out on, e.g. prod.")],
        service: Annotated[str, typer.Option("--service", help="Service in both stacks' gantry:services.")],
        stack_dir: Annotated[Path | None, typer.Option(
            "--stack-dir", help="Directory of the Pulumi.<stack>.yaml files (default: Pulumi.yaml's stackConfigDir).")
        ] = None,
        force: Annotated[bool, typer.Option(
            "--force", help="Start it even if the destination quarantined it.")] = False,
        json_mode: Annotated[bool, typer.Option("--json", help="One JSON event per line.")] = False,
        project: Annotated[Path, typer.Option(
            "--project", "-p", help="Project directory (Pulumi.yaml, stacks/, .gantry/).")] = Path("."),
    ) -> None:
        """Roll out on --to the version --from runs, once --from's last rollout of it promoted and verified."""
        from infra.commands.rollout import (
            _drive,
            _engine_for,
            _locked_json,
            _observer,
            config_dir,
            open_journal,
            report,
        )
        from infra.config import ConfigError, load_stack
        from infra.errors import GantryError
        from infra.rollout.gitops import target_for, verified_version
        from infra.rollout.provenance import resolve as resolve_provenance
        from infra.rollout.seams import RolloutId, StackName

        if source == destination:
            fail(InputError(f"--to must name another stack than --from, but both are {source!r}"))
        directory = stack_dir if stack_dir is not None else config_dir(project)
        try:
            src_cfg = load_stack(source, directory)
            dst_cfg = load_stack(destination, directory)
            src_cfg.service(service)
            svc = dst_cfg.service(service)
        except ConfigError as exc:
            fail(exc)
        except KeyError as exc:
            fail(InputError(str(exc.args[0])))
        strategy = svc.strategy
        settings = dst_cfg.rollout_for(service)
        # The source's rollouts are read where its stack keeps them; the destination's lease and journal are its own.
        src_journal = open_journal(project, state=src_cfg.rollout.state)
        journal = open_journal(project, state=dst_cfg.rollout.state)
        try:
            src_settings = src_cfg.rollout_for(service)
            src_target = target_for(project, source, service, src_cfg, src_settings, src_cfg.services[service].strategy)
            verified = verified_version(src_target, src_journal, source, service)
            image = verified.image
            # Lead time runs from the commit the source verified, not from this job's checkout.
            record = src_journal.get(RolloutId(verified.rollout_id)) if verified.rollout_id is not None else None
            provenance = record.provenance if record is not None and record.provenance.commit else \
                resolve_provenance(commit=None, committed_at=None, env=os.environ, project=project, now=time.time())
            dst_target = target_for(project, destination, service, dst_cfg, settings, strategy)
            if dst_target.current().stable_image == image:
                message = f"{destination} already runs {image} for {service}: nothing to promote"
                if json_mode:
                    sys.stdout.write(json.dumps({"event": "outcome", "phase": "promoted", "image": image,
                                                 "reason": message, "exit_code": 0}, sort_keys=True) + "\n")
                else:
                    out.print(plain(message))
                raise typer.Exit(ExitCode.OK)
            if not json_mode:
                source_text = f"rollout {verified.rollout_id}" if verified.rollout_id else "its stack outputs"
                out.print(plain(f"promoting {image} from {source} ({source_text}) to {destination}"))
            observer = _observer(json_mode)
            engine, parts = _engine_for(project, destination, service, image, strategy, dst_cfg, settings, journal,
                                        observer, json_mode)
            outcome = _drive(observer, lambda: engine.start(stack=StackName(destination), service=service,
                                                            image=image, plan=parts.plan, force=force,
                                                            provenance=provenance))
        except GantryError as exc:
            _locked_json(exc, json_mode)
            fail(exc)
        finally:
            journal.close()
            src_journal.close()
        report(outcome, json_mode)

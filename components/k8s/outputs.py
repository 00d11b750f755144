"""The typed service-outputs contract, and where a service's rollout progress comes from on each ``up``.

``ServiceOutputs`` is the one model of the stack output ``services.<name>``: the delivery components and
the program export it, ``PulumiStackTarget`` and ``gantry promote`` parse it, the Automation API fake's
program builds it. Keys are the fields' camelCase aliases, so a field renamed here is renamed everywhere.

``Progress`` is the part a rollout moves (stable image, canary image and weight, active color, color
images, and the rollout holding the service). It lives in the stack's own state, never in the git-tracked
stack file: ``resolve`` decides it for each ``up`` from the stack file's desired ``image``, the outputs of
the previous update and, when ``gantry`` runs the ``up``, the rollout's instruction (see the README,
"GitOps-safe config").
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from components.spec import Color, Delivery, ServiceSpec, Strategy

S = TypeVar("S", bound=ServiceSpec)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    def to_json(self) -> dict[str, object]:
        """The value exported (camelCase keys, plain JSON values)."""
        return self.model_dump(by_alias=True, mode="json")


class RolloutState(StrEnum):
    """Where the last ``gantry`` rollout of the service stands, as the stack recorded it."""

    PROGRESSING = "progressing"
    """A rollout holds the service: an outside ``pulumi up`` changes nothing for it."""
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled-back"


class RolloutMark(_Model):
    """The last rollout of the service: its image and how it stands."""

    image: str
    state: RolloutState


class Progress(_Model):
    """What a rollout moves; the stack's state holds it between updates."""

    image: str = Field(description="Stable image (blue/green: the image both colors default to).")
    canary_image: str | None = None
    canary_weight: int = Field(default=0, ge=0, le=100)
    active_color: Color = Color.BLUE
    blue_image: str | None = None
    green_image: str | None = None
    rollout: RolloutMark | None = None

    @property
    def held(self) -> bool:
        return self.rollout is not None and self.rollout.state is RolloutState.PROGRESSING

    def color_image(self, color: Color) -> str:
        chosen = self.blue_image if color is Color.BLUE else self.green_image
        return chosen if chosen is not None else self.image

    @property
    def serving(self) -> str:
        """The image users get from the stable track or the active color."""
        return self.color_image(self.active_color)

    def _with(self, **changes: object) -> Progress:
        # Validated, unlike model_copy(update=...): a weight of 101 or a bad color never gets through.
        return Progress.model_validate({**self.model_dump(), **changes})

    def with_weight(self, weight: int) -> Progress:
        return self._with(canary_weight=weight)

    def with_active(self, color: Color) -> Progress:
        return self._with(active_color=color)

    def marked(self, image: str, state: RolloutState) -> Progress:
        return self._with(rollout=RolloutMark(image=image, state=state))

    def promoted(self, strategy: Strategy) -> Progress:
        """The new version becomes stable: the canary's image (or the active color's) serves alone."""
        image = (self.canary_image or self.image) if strategy is Strategy.CANARY else self.serving
        return self.at_rest(strategy, image).marked(image, RolloutState.PROMOTED)

    def images(self) -> set[str]:
        return {i for i in (self.image, self.canary_image, self.blue_image, self.green_image) if i is not None}

    def at_rest(self, strategy: Strategy, image: str) -> Progress:
        """``image`` serves everything, nothing is staged (the active color is kept)."""
        del strategy  # both strategies rest the same way: no canary, both colors on ``image``
        return Progress(image=image, active_color=self.active_color, rollout=self.rollout)

    def staged(self, strategy: Strategy, image: str) -> Progress:
        """``image`` waits with no traffic: a canary at 0%, or the inactive color."""
        if strategy is Strategy.CANARY:
            return self._with(canary_image=image, canary_weight=0)
        if self.active_color is Color.BLUE:
            return self._with(green_image=image)
        return self._with(blue_image=image)

    def applied_to(self, spec: S) -> S:
        """The spec the components build: the stack file's service with this progress."""
        values = spec.model_dump()
        values.update(image=self.image, canary_image=self.canary_image, canary_weight=self.canary_weight,
                      active_color=self.active_color, blue_image=self.blue_image, green_image=self.green_image)
        if spec.strategy is Strategy.BLUEGREEN:
            values.update(canary_image=None, canary_weight=0)
        else:
            values.update(blue_image=None, green_image=None)
        return type(spec).model_validate(values)

    @classmethod
    def of(cls, spec: ServiceSpec) -> Progress:
        """The progress a stack file states (seeds a stack's first update, and offline renders)."""
        return cls(image=spec.image, canary_image=spec.canary_image, canary_weight=spec.canary_weight,
                   active_color=spec.active_color, blue_image=spec.blue_image, green_image=spec.green_image)


class ServiceOutputs(_Model):
    """The stack output ``services.<name>``."""

    strategy: Strategy
    namespace: str
    delivery: Delivery = Delivery.PROGRESSIVE
    service_name: str | None = None
    preview_service_name: str | None = None
    router: str | None = None
    hostnames: list[str] = Field(default_factory=list)
    image: str
    canary_image: str | None = None
    canary_weight: int | None = None
    active_color: Color | None = None
    blue_image: str | None = None
    green_image: str | None = None
    desired_image: str | None = None
    """The stack file's ``image`` as the last update saw it: only a change of it stages a new version."""
    rollout: RolloutMark | None = None

    @model_validator(mode="before")
    @classmethod
    def _engine_numbers(cls, data: object) -> object:
        # Read back inside a program, the engine gives numbers as floats (10.0): accept whole ones only.
        if isinstance(data, dict):
            weight = data.get("canaryWeight")
            if isinstance(weight, float) and weight.is_integer():
                return {**data, "canaryWeight": int(weight)}
        return data

    @classmethod
    def build(cls, spec: ServiceSpec, *, service_name: str | None = None, preview_service_name: str | None = None,
              router: str | None = None, desired_image: str | None = None,
              rollout: RolloutMark | None = None) -> ServiceOutputs:
        """What a service built from ``spec`` exports (``spec`` carries the resolved progress)."""
        canary = spec.strategy is Strategy.CANARY
        p = Progress.of(spec)
        return cls(
            strategy=spec.strategy, namespace=spec.namespace, delivery=spec.delivery, service_name=service_name,
            preview_service_name=preview_service_name, router=router, hostnames=list(spec.hostnames),
            image=spec.image,
            canary_image=spec.canary_image if canary else None,
            canary_weight=spec.canary_weight if canary else None,
            active_color=None if canary else spec.active_color,
            blue_image=None if canary else p.color_image(Color.BLUE),
            green_image=None if canary else p.color_image(Color.GREEN),
            desired_image=desired_image if desired_image is not None else spec.image,
            rollout=rollout,
        )

    def tracked(self, *, desired_image: str, rollout: RolloutMark | None) -> ServiceOutputs:
        """These outputs with the rollout bookkeeping the program adds to what a component exports."""
        return self.model_copy(update={"desired_image": desired_image, "rollout": rollout})

    def progress(self) -> Progress:
        canary = self.strategy is Strategy.CANARY
        image = self.image
        blue, green = self.blue_image, self.green_image
        return Progress(
            image=image,
            canary_image=self.canary_image if canary else None,
            canary_weight=(self.canary_weight or 0) if canary else 0,
            active_color=self.active_color or Color.BLUE,
            # A color on the stable image is the default, not an override.
            blue_image=None if canary or blue == image else blue,
            green_image=None if canary or green == image else green,
            rollout=self.rollout,
        )


def resolve(spec: ServiceSpec, previous: ServiceOutputs | None, instruction: Progress | None
            ) -> tuple[Progress, str]:
    """This update's progress for one service, and the desired image it records.

    - ``gantry`` runs the ``up`` (``instruction``): the rollout's step is applied as given.
    - No previous update: the stack file's own state (a stack's first update; offline renders).
    - A rollout holds the service: nothing changes, whatever the stack file says now (its change is
      not consumed either: it is staged once the rollout ends).
    - The stack file's ``image`` did not change since the last update: nothing changes. A checkout that
      never saw a rollout (the rollout writes no file) therefore reverts nothing.
    - It changed: ``delivery: direct`` serves it at once; ``progressive`` stages it (a canary at 0%, or
      the inactive color) for ``gantry rollout start``, or unstages when it is the stable image again.
    """
    desired = spec.image
    if instruction is not None:
        if previous is not None and previous.desired_image is not None and desired not in instruction.images():
            # A rollout of another image (`--image`) leaves the stack file's change to be staged later.
            return instruction, previous.desired_image
        return instruction, desired
    if previous is None:
        return Progress.of(spec), desired
    before = previous.progress()
    last_desired = previous.desired_image if previous.desired_image is not None else before.image
    if before.held or desired == last_desired:
        return before, last_desired
    if spec.delivery is Delivery.DIRECT:
        return before.at_rest(spec.strategy, desired), desired
    if desired == before.serving:
        return before.at_rest(spec.strategy, before.serving), desired
    rest = before.at_rest(spec.strategy, before.serving)
    return rest.staged(spec.strategy, desired), desired

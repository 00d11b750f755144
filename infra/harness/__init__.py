"""The render harness: runs a Pulumi Python program under mocks inside the project's own interpreter.

It depends only on ``pulumi`` (and the standard library), so ``infra.render`` can load it into any
virtualenv, poetry or uv environment by path; ``infra.render`` also imports it in-process for
``render_callable``. Nothing here may import Gantry's other packages, pydantic or PyYAML.
"""

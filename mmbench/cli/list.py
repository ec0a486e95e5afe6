"""`mmbench list`: what is registered (models, datasets with plugins; broken ones say why) and the metrics."""
from __future__ import annotations

import click


@click.command("list")
@click.argument("what", type=click.Choice(["models", "datasets", "metrics"]))
def list_cmd(what: str) -> None:
    """List the registered models, datasets (plugins included; broken ones say why) or metrics."""
    from mmbench.api.registry import DATASETS, MODELS

    if what == "metrics":
        from mmbench.evaluation.evaluators import EVALUATORS
        from mmbench.metrics.quality_gap import QualityGap

        rows = [(m, ev.name, ev.description) for ev in EVALUATORS.values() for m in ev.metrics]
        rows.append((QualityGap, QualityGap.name, "Gap of unconditional quality to the unimodal run of the same seed and tier."))
        for metric, evaluator_name, description in rows:
            direction = "higher is better" if metric.higher_is_better else "lower is better"
            click.echo(f"{metric.name:<28} v{metric.version}  {direction:<17} [{evaluator_name}] {description}")
        return
    registry = MODELS if what == "models" else DATASETS
    for name in registry.names():
        click.echo(name)
    for name, reason in sorted(registry.broken.items()):
        click.echo(f"{name} (broken: {reason})", err=True)

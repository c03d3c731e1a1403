"""`nsml plot`: the report curves of a session as a PNG (matplotlib, Agg).

One panel per key. The x axis is `step` when the reports carry one, else the
`epoch` value, else the report's index.
"""
from . import reports
from .errors import NSMLError


def curves(records, keys=None):
    """{key: ([x...], [y...])} of the numeric values, and the x axis label."""
    with_step = [r for r in records if r.get('step') is not None]
    use = 'step' if with_step else ('epoch' if any('epoch' in r['values'] for r in records) else 'report')
    found = {}
    for index, record in enumerate(records):
        values = record.get('values', {})
        x = record.get('step') if use == 'step' else values.get('epoch') if use == 'epoch' else index
        if x is None:
            continue
        for key, value in values.items():
            if keys and key not in keys:
                continue
            if not keys and key == use:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            found.setdefault(key, ([], []))
            found[key][0].append(x)
            found[key][1].append(value)
    return found, use


def plot(session, keys, output):
    found, x_label = curves(reports.read(session.dir), keys)
    if keys:
        missing = [k for k in keys if k not in found]
        if missing:
            raise NSMLError('session %s reported no numeric values for: %s' % (session.name, ', '.join(missing)))
    if not found:
        raise NSMLError('session %s has no numeric reports to plot' % session.name)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = keys or sorted(found)
    figure, axes = plt.subplots(len(names), 1, figsize=(7, 2.6 * len(names)), squeeze=False, sharex=True)
    for axis, name in zip(axes[:, 0], names):
        xs, ys = found[name]
        axis.plot(xs, ys, marker='o', markersize=3)
        axis.set_ylabel(name)
        axis.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel(x_label)
    axes[0, 0].set_title(session.name)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return output

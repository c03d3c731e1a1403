"""`nsml plot`: the report curves of a session as a PNG (matplotlib, Agg).

The x axis is `step` when the reports carry one, else the `epoch` value, else
the report's index. What goes where follows generic rules on the key names,
so any code's reports lay out sensibly, not only this kit's:

* related series share a panel: keys are grouped by their family, the last
  `_`-separated word of the name (`train_loss`, `val_loss` -> loss;
  `val_cer`, `avg_val_cer` -> cer; `val_accuracy`, `ensemble_accuracy` ->
  accuracy), with a few aliases (`acc` -> accuracy, `learning_rate` -> lr);
* counters are left out: a series named like epoch/step/iteration (or
  *_size/*_count) whose values are integers that never decrease (it would be
  a straight line);
* one-off values, keys with fewer than 2 points (tuned decoder weights, a
  final score), and constant series (a fixed lr) are listed as text under
  the panels, not drawn as one-point or flat panels.

Keys named on the command line are all shown (counters too), grouped by the
same rule.
"""
import math
import re
from dataclasses import dataclass, field

from . import reports
from .errors import NSMLError

COUNTER_NAME = re.compile(r'(^|_)(epoch|step|iteration|iter|update|size|count)s?$')
ALIASES = {'acc': 'accuracy', 'learning_rate': 'lr', 'learningrate': 'lr'}
# Families recognised at the end of names without an underscore ('trainloss', 'valcer').
SUFFIXES = ('loss', 'cer', 'wer', 'accuracy', 'acc', 'f1')
LOG_FAMILIES = ('loss',)  # drawn on a log axis when they span more than LOG_SPAN (lr schedules read better linear)
LOG_SPAN = 20.0


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
            if isinstance(value, float) and not math.isfinite(value):
                continue
            found.setdefault(key, ([], []))
            found[key][0].append(x)
            found[key][1].append(value)
    return found, use


def family(key):
    """The panel a key belongs to: 'val_cer' -> 'cer', 'learning_rate' -> 'lr'."""
    name = key.lower()
    for alias, target in ALIASES.items():
        if name == alias or name.endswith('_' + alias):
            return target
    last = name.rsplit('_', 1)[-1] or name
    if '_' not in name:
        for suffix in SUFFIXES:
            if name.endswith(suffix):
                last = suffix
                break
    return ALIASES.get(last, last)


def is_counter(key, ys):
    """epoch/step/iteration-like names whose values are non-decreasing integers."""
    if not COUNTER_NAME.search(key.lower()):
        return False
    if not all(float(y).is_integer() for y in ys):
        return False
    return all(b >= a for a, b in zip(ys, ys[1:]))


@dataclass
class Layout:
    """What `plot` draws: panels of (family, [keys]), one-offs as text, counters left out."""
    panels: list = field(default_factory=list)     # [(family, [key, ...]), ...]
    one_offs: list = field(default_factory=list)   # [(key, x, value), ...]; x None: constant series
    dropped: list = field(default_factory=list)    # counter keys not drawn


def layout(found, keys=None):
    """Group the curves of `curves()` into panels.

    Panels come in order of their first key's appearance, except that loss
    comes first and lr last; keys inside a panel keep appearance order.
    """
    result = Layout()
    groups = {}
    for key in (keys or list(found)):
        xs, ys = found[key]
        if not keys and is_counter(key, ys):
            result.dropped.append(key)
        elif len(ys) < 2:
            result.one_offs.append((key, xs[-1], ys[-1]))
        elif not keys and min(ys) == max(ys):
            result.one_offs.append((key, None, ys[-1]))
        else:
            groups.setdefault(family(key), []).append(key)
    order = list(groups)
    rank = {name: (0 if name == 'loss' else 2 if name == 'lr' else 1, i) for i, name in enumerate(order)}
    result.panels = [(name, groups[name]) for name in sorted(order, key=rank.get)]
    return result


def _number(value):
    if isinstance(value, int):
        return str(value)
    return '%.4g' % value


def plot(session, keys, output):
    found, x_label = curves(reports.read(session.dir), keys)
    if keys:
        missing = [k for k in keys if k not in found]
        if missing:
            raise NSMLError('session %s reported no numeric values for: %s' % (session.name, ', '.join(missing)))
    plan = layout(found, keys)
    if not plan.panels and not plan.one_offs:
        raise NSMLError('session %s has no numeric reports to plot' % session.name)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    text_rows = len(plan.one_offs)
    heights = [2.4] * len(plan.panels) + ([0.45 + 0.22 * text_rows] if text_rows else [])
    figure, axes = plt.subplots(len(heights), 1, figsize=(8, sum(heights) + 0.6), squeeze=False,
                                gridspec_kw={'height_ratios': heights})
    axes = list(axes[:, 0])
    curve_axes = axes[:len(plan.panels)]
    for axis, (name, members) in zip(curve_axes, plan.panels):
        low, high = math.inf, -math.inf
        for key in members:
            xs, ys = found[key]
            axis.plot(xs, ys, marker='o', markersize=3, label='%s (last %s)' % (key, _number(ys[-1])))
            low, high = min(low, min(ys)), max(high, max(ys))
        if name in LOG_FAMILIES and low > 0 and high / low > LOG_SPAN:
            axis.set_yscale('log')
        axis.set_ylabel(name if len(members) > 1 else members[0])
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8, loc='best', framealpha=0.8)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if curve_axes:
        # One shared x range for the curve panels (the text panel has no x axis).
        for axis in curve_axes[1:]:
            axis.sharex(curve_axes[0])
        for axis in curve_axes[:-1]:
            axis.tick_params(labelbottom=False)
        curve_axes[-1].set_xlabel(x_label)
    if text_rows:
        box = axes[-1]
        box.axis('off')
        width = max(len(key) for key, _, _ in plan.one_offs)
        lines = ['%-*s  %-10s  (%s)' % (width, key, _number(value), 'constant over %d reports' % len(found[key][1])
                                         if x is None else '%s %s' % (x_label, _number(x)))
                 for key, x, value in plan.one_offs]
        header = 'one-off values' + (' and constants' if any(x is None for _, x, _ in plan.one_offs) else '')
        box.text(0.01, 0.98, header + '\n' + '\n'.join(lines), family='monospace', fontsize=9,
                 va='top', ha='left', transform=box.transAxes,
                 bbox={'boxstyle': 'round', 'facecolor': '#f4f4f4', 'edgecolor': '#bbbbbb'})
    title = session.name
    if plan.dropped:
        title += '   (counters not drawn: %s)' % ', '.join(plan.dropped)
    axes[0].set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return output

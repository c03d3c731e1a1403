"""`nsml plot`: the report curves of one or more sessions as a PNG (matplotlib, Agg).

The x axis is `step` when the reports carry one, else the `epoch` value, else
the report's index; it is labelled `epoch` when every step equals the epoch
reported with it (this kit reports once per epoch), so the label says what it
counts. Several sessions are overlaid as NSML's web graph does: one colour per
session, the arguments that differ between them in the legend. `smooth` is
TensorBoard's: an exponential moving average with its start debiased, drawn
over the faint raw curve. What goes where follows generic rules on the key names,
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
import sys
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
    """{key: ([x...], [y...])} of the numeric values sorted by x, and the x axis label."""
    with_step = [r for r in records if r.get('step') is not None]
    use = 'step' if with_step else ('epoch' if any('epoch' in r['values'] for r in records) else 'report')
    found = _points(records, keys, use)
    label = use
    epochs = [(r['step'], r['values']['epoch']) for r in with_step if 'epoch' in r.get('values', {})]
    if use == 'step' and epochs and all(step == epoch for step, epoch in epochs):
        label = 'epoch'  # the steps are epochs: say so
    # A report may come back to an earlier x (the kit's tuned summary repeats the best epoch's val_cer):
    # sort stably and drop exact repeats, so the line neither jumps back nor kinks.
    for key, (xs, ys) in found.items():
        points = sorted(dict.fromkeys(zip(xs, ys)), key=lambda point: point[0])
        found[key] = ([x for x, _ in points], [y for _, y in points])
    return found, label


def _points(records, keys, use):
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
    return found


def smoothed(ys, weight):
    """TensorBoard's smoothing: an exponential moving average, debiased so it starts at the data."""
    if not weight:
        return list(ys)
    out, last = [], 0.0
    for count, y in enumerate(ys, 1):
        last = last * weight + (1 - weight) * y
        out.append(last / (1 - weight ** count))
    return out


def differing_args(arg_strings):
    """For each session's argument string, the options whose values are not the same in all of
    them, as text: ['--lr 0.001', '--lr 0.003 --model conformer']. Absent options read 'default'."""
    parsed = [_options(text) for text in arg_strings]
    names = []
    for options in parsed:
        names += [n for n in options if n not in names]
    differ = [n for n in names if len({options.get(n, 'default') for options in parsed}) > 1]
    return [' '.join(('%s %s' % (n, options.get(n, 'default'))).strip() for n in differ) for options in parsed]


def _options(text):
    """'--lr 0.1 --compile --model=x' -> {'--lr': '0.1', '--compile': '', '--model': 'x'}."""
    import shlex
    tokens = shlex.split(text or '')
    options, i = {}, 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith('-') and '=' in token:
            name, value = token.split('=', 1)
            options[name] = value
        elif token.startswith('-') and i + 1 < len(tokens) and not _is_option(tokens[i + 1]):
            options[token] = tokens[i + 1]
            i += 1
        else:
            options[token] = ''
        i += 1
    return options


def _is_option(token):
    if not token.startswith('-'):
        return False
    try:
        float(token)  # -1 is a value
        return False
    except ValueError:
        return True


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
    result.panels = ordered_panels(groups)
    return result


def ordered_panels(groups):
    """[(family, keys)] of {family: keys}: loss first, lr last, the others in order of appearance."""
    order = list(groups)
    rank = {name: (0 if name == 'loss' else 2 if name == 'lr' else 1, i) for i, name in enumerate(order)}
    return [(name, groups[name]) for name in sorted(order, key=rank.get)]


def merged_layout(plans):
    """One Layout for several sessions' Layouts: a key drawn in any session is drawn for all that
    have it; one-offs keep their session's index: (index, key, x, value)."""
    groups, drawn = {}, set()
    for plan in plans:
        for name, members in plan.panels:
            keys = groups.setdefault(name, [])
            keys += [k for k in members if k not in keys]
            drawn.update(members)
    result = Layout(panels=ordered_panels(groups))
    for index, plan in enumerate(plans):
        result.one_offs += [(index, key, x, value) for key, x, value in plan.one_offs if key not in drawn]
        result.dropped += [k for k in plan.dropped if k not in result.dropped]
    return result


def _number(value):
    if isinstance(value, int):
        return str(value)
    return '%.4g' % value


LINE_STYLES = ('-', '--', ':', '-.')


def plot(sessions, keys, output, smooth=0.0):
    """Draw the curves of `sessions` (one session or a list) into the PNG `output`."""
    if not isinstance(sessions, (list, tuple)):
        sessions = [sessions]
    if not 0 <= smooth < 1:
        raise NSMLError('--smooth must be in [0, 1) (TensorBoard\'s slider; 0.6 is its default), not %s' % smooth)
    per_session = [curves(reports.read(s.dir), keys) for s in sessions]
    if keys:
        missing = [k for k in keys if not any(k in found for found, _ in per_session)]
        if missing:
            raise NSMLError('%s numeric values for: %s' % (
                'session %s reported no' % sessions[0].name if len(sessions) == 1
                else 'none of the sessions reported', ', '.join(missing)))
    plans = [layout(found, [k for k in keys if k in found] if keys else None) for found, _ in per_session]
    plan = merged_layout(plans)
    if not plan.panels and not plan.one_offs:
        raise NSMLError('%s no numeric reports to plot' % (
            'session %s has' % sessions[0].name if len(sessions) == 1 else 'the sessions have'))
    labels = {label for _, label in per_session}
    x_label = labels.pop() if len(labels) == 1 else 'step'
    names = [s.name for s in sessions]
    if len(sessions) > 1:
        differ = differing_args([_arguments(s) for s in sessions])
        names = ['%s  %s' % (s.name, d) if d else s.name for s, d in zip(sessions, differ)]

    try:
        import matplotlib
    except ImportError:  # an optional dependency of the emulator: say how to get it, not a traceback
        raise NSMLError('nsml plot needs matplotlib, which is not installed in this environment: '
                        '%s -m pip install matplotlib' % (sys.executable or 'python'))
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    text_rows = len(plan.one_offs)
    legend_rows = len(sessions) if len(sessions) > 1 else 0
    heights = [2.4] * len(plan.panels) + ([0.45 + 0.22 * text_rows] if text_rows else [])
    figure, axes = plt.subplots(len(heights), 1, figsize=(8, sum(heights) + 0.6 + 0.22 * legend_rows),
                                squeeze=False, gridspec_kw={'height_ratios': heights})
    axes = list(axes[:, 0])
    curve_axes = axes[:len(plan.panels)]
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for axis, (name, members) in zip(curve_axes, plan.panels):
        low, high = math.inf, -math.inf
        for index, (found, _) in enumerate(per_session):
            for number, key in enumerate(members):
                if key not in found:
                    continue
                xs, ys = found[key]
                # One session: a colour per key. Several: a colour per session, a line style per key.
                colour = colours[(number if len(sessions) == 1 else index) % len(colours)]
                style = '-' if len(sessions) == 1 else LINE_STYLES[number % len(LINE_STYLES)]
                label = '%s (last %s)' % (key, _number(ys[-1])) if len(sessions) == 1 else None
                if smooth:
                    axis.plot(xs, ys, color=colour, linestyle=style, linewidth=1, alpha=0.25)
                    axis.plot(xs, smoothed(ys, smooth), color=colour, linestyle=style, label=label)
                else:
                    axis.plot(xs, ys, color=colour, linestyle=style, marker='o', markersize=3, label=label)
                low, high = min(low, min(ys)), max(high, max(ys))
        if name in LOG_FAMILIES and low > 0 and high / low > LOG_SPAN:
            axis.set_yscale('log')
        axis.set_ylabel(name if len(members) > 1 else members[0])
        axis.grid(True, alpha=0.3)
        if len(sessions) == 1:
            axis.legend(fontsize=8, loc='best', framealpha=0.8)
        elif len(members) > 1:  # which line style is which key
            axis.legend([Line2D([], [], color='#444444', linestyle=LINE_STYLES[n % len(LINE_STYLES)])
                         for n in range(len(members))], members, fontsize=8, loc='best', framealpha=0.8)
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
        prefix = (lambda index: sessions[index].name + '  ') if len(sessions) > 1 else (lambda index: '')
        rows = [(prefix(index) + key, value, x, index, key) for index, key, x, value in plan.one_offs]
        width = max(len(row[0]) for row in rows)
        lines = ['%-*s  %-10s  (%s)' % (width, shown, _number(value), 'constant over %d reports'
                                         % len(per_session[index][0][key][1]) if x is None
                                         else '%s %s' % (x_label, _number(x)))
                 for shown, value, x, index, key in rows]
        header = 'one-off values' + (' and constants' if any(x is None for _, _, x, _ in plan.one_offs) else '')
        box.text(0.01, 0.98, header + '\n' + '\n'.join(lines), family='monospace', fontsize=9,
                 va='top', ha='left', transform=box.transAxes,
                 bbox={'boxstyle': 'round', 'facecolor': '#f4f4f4', 'edgecolor': '#bbbbbb'})
    title = sessions[0].name if len(sessions) == 1 else '%d sessions' % len(sessions)
    if smooth:
        title += '   (smoothed %g)' % smooth
    if plan.dropped:
        title += '   (counters not drawn: %s)' % ', '.join(plan.dropped)
    axes[0].set_title(title, fontsize=10)
    figure.tight_layout()
    if legend_rows:  # the sessions, with the arguments that tell them apart, above the panels
        top = 1 - (0.2 * legend_rows + 0.45) / figure.get_figheight()  # the legend, then the title
        figure.subplots_adjust(top=top)
        figure.legend([Line2D([], [], color=colours[i % len(colours)]) for i in range(len(sessions))], names,
                      loc='upper left', bbox_to_anchor=(0.01, 0.995), fontsize=8, frameon=False)
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return output


def _arguments(session):
    """The entry-file arguments a session ran with, without the reserved ones NSML adds."""
    from .launcher import strip_reserved
    meta = session.meta() if hasattr(session, 'meta') else {}
    return strip_reserved(meta.get('args'))

"""Weight averaging: an exponential moving average kept during training, and the N best epochs' weights.

The strongest ASR recipes submit averaged weights rather than one epoch's: Conformer and
Zipformer recipes keep an EMA of the weights (icefall's `--use-averaged-model`), ESPnet
averages the N best checkpoints by validation accuracy, WeNet the last N. Both kinds are
kept here in memory (no extra checkpoint files); the trainer decides at the end of training,
by validation CER, whether the plain best epoch, the EMA or the average is submitted.

Task-free: a state dict in, a state dict out.
"""
import torch


def average_state_dicts(states: list) -> dict:
    """Element-wise mean of model state dicts with the same keys; non-float entries from the last one."""
    if not states:
        raise ValueError("no weights to average")
    averaged = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            # float64 sums: averaging identical weights gives them back bit for bit
            averaged[key] = torch.stack([s[key].double() for s in states]).mean(0).to(last.dtype)
        else:
            averaged[key] = last.clone()
    return averaged


def cpu_copy(model: torch.nn.Module) -> dict:
    """The model's state dict, copied to the CPU (kept weights must not change as training goes on)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


class ExponentialMovingAverage:
    """shadow <- decay * shadow + (1 - decay) * weights, after every optimizer step, on the model's device.

    Covers every floating-point entry of the state dict (parameters and float buffers such as
    BatchNorm statistics); integer buffers (BatchNorm's counter) are copied as they are. The
    decay warms up as min(decay, (1 + n) / (10 + n)) after n updates (TensorFlow's
    ExponentialMovingAverage with num_updates), so a short run is not dominated by its random
    initial weights: after 100 steps the average reaches back ~10 steps, not ~1,000.

    Give it the unwrapped model (not a DDP or torch.compile wrapper), so its keys are the
    checkpoint's. Every DDP rank holds identical weights, so every rank's EMA is the same.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must lie in (0, 1), got {decay}")
        self.decay, self.updates = decay, 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module):
        decay = self.current_decay()
        self.updates += 1
        state = model.state_dict()
        floats = [k for k, v in self.shadow.items() if v.is_floating_point()]
        # One fused kernel per list on a GPU (a loop would launch one per tensor, every step).
        torch._foreach_lerp_([self.shadow[k] for k in floats], [state[k].detach() for k in floats], 1.0 - decay)
        for k, v in self.shadow.items():
            if not v.is_floating_point():
                v.copy_(state[k])

    def weights(self) -> dict:
        """The averaged weights as a state dict for `model.load_state_dict` (CPU copies)."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.shadow.items()}

    def state_dict(self) -> dict:
        """What a checkpoint keeps (the trainer state), so a forked session continues the average."""
        return {"decay": self.decay, "updates": self.updates, "weights": self.weights()}

    def load_state_dict(self, state: dict):
        missing = set(self.shadow) ^ set(state["weights"])
        if missing:
            raise ValueError(f"the saved EMA does not match the model: keys {sorted(missing)[:5]} differ")
        self.updates = int(state["updates"])
        for k, v in state["weights"].items():
            self.shadow[k].copy_(v)


class BestWeights:
    """The weights of the `keep` epochs with the best validation scores (lower is better), on the CPU.

    ESPnet's `average_nbest_models`: the mean of the N best is less noisy than the single best
    and than the last N, which may include epochs past the point where validation got worse."""

    def __init__(self, keep: int):
        self.keep = keep
        self.entries = []  # (score, epoch, weights), best first

    def __len__(self):
        return len(self.entries)

    def offer(self, score: float, epoch: int, model: torch.nn.Module):
        """Keep this epoch's weights if they are among the `keep` best so far (copies only those)."""
        if self.keep <= 0:
            return
        if len(self.entries) == self.keep and score >= self.entries[-1][0]:
            return
        self.entries.append((score, epoch, cpu_copy(model)))
        self.entries.sort(key=lambda entry: (entry[0], -entry[1]))  # ties: the later epoch first
        del self.entries[self.keep:]

    def epochs(self) -> list:
        return [epoch for _, epoch, _ in self.entries]

    def averaged(self) -> dict:
        return average_state_dicts([weights for _, _, weights in self.entries])


def choose_weights(model: torch.nn.Module, plain_score: float, candidates: dict, score_fn) -> tuple:
    """The candidate weights that score lowest, the plain ones winning ties.

    plain_score: the score of the weights `model` holds now (the plain best epoch's); candidates:
    {name: state dict}; score_fn(): the validation score of the weights `model` holds. Returns
    (name, scores by name): "plain" or a candidate's name; `model` is left holding the winner.
    """
    plain = cpu_copy(model)
    scores, best_name = {"plain": plain_score}, "plain"
    for name, weights in candidates.items():
        model.load_state_dict(weights)
        scores[name] = score_fn()
        if scores[name] < scores[best_name]:
            best_name = name
    model.load_state_dict(plain if best_name == "plain" else candidates[best_name])
    return best_name, scores

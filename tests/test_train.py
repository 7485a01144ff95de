"""Tests of the training loop (tlhelpers.train): fit, evaluate, predict, EarlyStopping."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlhelpers.data import ImageSet
from tlhelpers.models import SmallCNN, freeze, set_bn_eval
from tlhelpers.train import EarlyStopping, History, accuracy, evaluate, fit, predict


class TinyLoader:
    """In-memory loader yielding (x, y) batches in order; stands in for the course's loader."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def __iter__(self):
        for i in range(0, len(self.y), self.batch_size):
            yield self.x[i : i + self.batch_size], self.y[i : i + self.batch_size]


def blobs(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three well-separated Gaussian blobs in 2-D: a problem a small MLP learns in a few steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    return centres[y] + torch.randn(n, 2, generator=g), y  # (n, 2), (n,)


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))


def make_fit(model: nn.Module, loader, val=None, lr: float = 0.05, **kwargs) -> History:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    return fit(model, loader, val, optimizer=optimizer, progress=False, **kwargs)


def test_fit_learns_and_records_history() -> None:
    x, y = blobs()
    model = mlp()
    history = make_fit(model, TinyLoader(x, y, 16), TinyLoader(x, y, 32), epochs=4)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.val_acc[-1] > 90  # percent
    for values in (history.train_loss, history.train_acc, history.val_loss, history.val_acc):
        assert len(values) == 4
    assert len(history.lr) == len(history.seconds) == history.epochs == 4
    assert history.steps == 4 * 6
    assert all(0.0 <= a <= 100.0 for a in history.train_acc + history.val_acc)
    assert history.best_epoch == min(range(4), key=history.val_loss.__getitem__)
    assert not history.stopped_early
    assert set(history.as_dict()) >= {"train_loss", "val_acc", "lr", "seconds", "steps"}
    assert "4 epochs, 24 steps" in str(history)


def test_train_metrics_are_batch_averages() -> None:
    x, y = blobs(40)
    model = mlp()
    history = make_fit(model, TinyLoader(x, y, 16), lr=1e-12, epochs=1)  # weights barely move
    reference = evaluate(model, TinyLoader(x, y, 40), device="cpu")
    assert history.train_loss[0] == pytest.approx(reference.loss, rel=1e-5)
    assert history.train_acc[0] == pytest.approx(reference.accuracy)


def test_max_steps_is_honoured_exactly() -> None:
    x, y = blobs()
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    calls = []
    optimizer.register_step_post_hook(lambda *_: calls.append(1))
    history = fit(model, TinyLoader(x, y, 32), optimizer=optimizer, max_steps=7, progress=False)
    assert len(calls) == history.steps == 7
    assert history.epochs == 3  # 3 + 3 + a partial epoch of 1 step
    calls.clear()
    history = fit(
        model, TinyLoader(x, y, 32), optimizer=optimizer, epochs=2, max_steps=50, progress=False
    )
    assert len(calls) == history.steps == 6  # epochs end first


def test_scheduler_steps_after_every_optimiser_step() -> None:
    x, y = blobs()
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(
        model,
        TinyLoader(x, y, 32),
        optimizer=optimizer,
        scheduler=scheduler,
        epochs=2,
        progress=False,
    )
    assert history.steps == 6
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5**6)
    assert history.lr == pytest.approx([0.5**2, 0.5**5])  # rate used at each epoch's last step


def test_early_stopping_stops_and_restores_best_weights() -> None:
    x, y = blobs()
    wrong = TinyLoader(x, (y + 1) % 3, 96)  # validation labels disagree: val loss rises
    model = mlp()
    stopper = EarlyStopping(patience=2)
    history = make_fit(model, TinyLoader(x, y, 16), wrong, epochs=20, early_stopping=stopper)
    assert history.stopped_early
    assert history.best_epoch == 0 and history.epochs == 3
    assert history.val_loss[1] > history.val_loss[0] and history.val_loss[2] > history.val_loss[0]
    assert evaluate(model, wrong, device="cpu").loss == pytest.approx(history.val_loss[0])

    reference = mlp()
    make_fit(reference, TinyLoader(x, y, 16), epochs=1)  # same seed: the best epoch's weights
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_early_stopping_on_accuracy_without_restore() -> None:
    x, y = blobs()
    model = mlp()
    stopper = EarlyStopping(patience=1, monitor="val_acc", min_delta=50.0, restore_best=False)
    history = make_fit(
        model, TinyLoader(x, y, 16), TinyLoader(x, y, 96), epochs=10, early_stopping=stopper
    )
    assert history.stopped_early and history.epochs == 2 and history.best_epoch == 0
    assert stopper.best_state is None
    assert stopper.best == history.val_acc[0]  # in percent, as the history records it


def test_early_stopping_on_accuracy_decides_as_the_fraction_rule_did() -> None:
    # 4 then 14 correct of 500: exactly min_delta better, where 100 × values round the other way
    model = mlp()
    before, after = 4 / 500, 14 / 500
    assert (after > before + 0.02) != (100 * after > 100 * before + 2.0)
    stopper = EarlyStopping(patience=1, monitor="val_acc", min_delta=2.0)
    assert not stopper._step_fraction(100 * before, before, model, 0)
    stops = stopper._step_fraction(100 * after, after, model, 1)
    assert stops == (not after > before + 0.02) and stopper.best == 100 * before
    public = EarlyStopping(patience=1, monitor="val_acc", min_delta=2.0)
    assert not public.step(40.0, model, 0) and not public.step(42.5, model, 1)
    assert public.step(44.0, model, 2) and public.best == 42.5  # points, not fractions


def test_evaluate_matches_hand_computation_and_restores_mode() -> None:
    x, y = blobs(50)
    model = mlp()
    logits = model(x)
    correct = int((logits.argmax(1) == y).sum())
    expected_loss = nn.functional.cross_entropy(logits, y).item()
    model.train()
    result = evaluate(model, TinyLoader(x, y, 16), device="cpu")
    assert result.n == 50
    assert result.accuracy == 100 * (correct / 50)  # percent, bit for bit as 100 * fraction
    assert result.loss == pytest.approx(expected_loss, rel=1e-5)
    assert model.training
    model.eval()
    evaluate(model, TinyLoader(x, y, 16), device="cpu")
    assert not model.training

    logits_all, targets = predict(model, TinyLoader(x, y, 16), device="cpu")
    assert logits_all.shape == (50, 3) and torch.equal(targets, y)
    assert torch.allclose(logits_all, logits.detach(), atol=1e-6)


def test_accuracy_on_an_image_set_is_evaluate_over_its_unshuffled_loader() -> None:
    torch.manual_seed(0)
    model = SmallCNN(3, widths=(4, 4, 8, 8))
    images = ImageSet(torch.randint(0, 256, (23, 3, 32, 32), dtype=torch.uint8),
                      torch.arange(23) % 3, ("a", "b", "c"), "tiny")
    expected = evaluate(model, images.loader(500, shuffle=False), device="cpu").accuracy
    assert accuracy(model, images, device="cpu") == expected
    assert accuracy(model, images, device="cpu", batch_size=4) == pytest.approx(expected)
    with pytest.raises(TypeError, match=r"ImageSet.*got TinyLoader.*evaluate"):
        accuracy(model, TinyLoader(torch.randn(4, 3, 32, 32), torch.arange(4) % 3, 2))


def test_evaluate_keeps_batch_norm_put_in_eval_by_hand() -> None:
    model = SmallCNN(4, widths=(4, 4, 8, 8))
    model.train()
    set_bn_eval(model, ["stem"])
    x = torch.randn(6, 3, 32, 32)
    evaluate(model, TinyLoader(x, torch.arange(6) % 4, 3), device="cpu")
    assert model.training and model.stage1[1].training and not model.stem[1].training


def test_fit_with_frozen_stages_and_bn_hook_changes_only_trainable_parts() -> None:
    torch.manual_seed(0)
    model = SmallCNN(4, widths=(8, 8, 16, 16))
    freeze(model, ["stem", "stage1", "stage2", "stage3"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 4
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    fit(
        model,
        TinyLoader(x, y, 8),
        optimizer=optimizer,
        epochs=2,
        progress=False,
        train_mode_hook=set_bn_eval,
    )
    after = model.state_dict()
    for key, value in before.items():
        assert torch.equal(after[key], value) != key.startswith("head"), key
    assert model.training and not model.stem[1].training  # hook applied after model.train()


def test_fit_accepts_dict_inputs_and_grad_clip() -> None:
    class KeywordModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = mlp()

        def forward(self, features: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
            return self.net(features * scale)

    x, y = blobs()
    batches = [
        ({"features": x[i : i + 32], "scale": torch.ones(1)}, y[i : i + 32]) for i in (0, 32, 64)
    ]
    model = KeywordModel()
    history = make_fit(model, batches, batches, epochs=3, grad_clip=0.5)
    assert history.train_loss[-1] < history.train_loss[0]
    assert evaluate(model, batches, device="cpu").n == 96


def test_same_seed_gives_identical_weights() -> None:
    x = torch.randn(32, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    y = torch.arange(32) % 5

    def run() -> dict[str, torch.Tensor]:
        torch.manual_seed(7)
        model = SmallCNN(5, widths=(8, 8, 16, 16))
        loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
        fit(
            model,
            loader,
            optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3),
            epochs=2,
            progress=False,
        )
        return model.state_dict()

    first, second = run(), run()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_progress_false_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    x, y = blobs()
    make_fit(mlp(), TinyLoader(x, y, 32), TinyLoader(x, y, 32), epochs=2)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_nan_loss_raises() -> None:
    x, y = blobs()
    x[0] = math.nan
    with pytest.raises(FloatingPointError, match="grad_clip"):
        make_fit(mlp(), TinyLoader(x, y, 32), epochs=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"epochs": 0}, ValueError, "epochs=0"),
        ({"max_steps": 0}, ValueError, "max_steps=0"),
        ({"max_steps": 2.5}, ValueError, "max_steps=2.5"),
        ({"optimizer": None}, TypeError, "optimizer=None"),
        ({"amp": True}, ValueError, "amp=True"),
        ({"grad_clip": -1.0}, ValueError, "grad_clip=-1.0"),
        ({"device": "tpu"}, ValueError, "device='tpu'"),
        ({"early_stopping": EarlyStopping(2)}, ValueError, "val_loader=None"),
        ({"train_loader": TinyLoader(torch.zeros(0, 2), torch.zeros(0), 4)}, ValueError, "empty"),
        ({"train_loader": iter([])}, TypeError, "len()"),
        ({"train_loader": [(torch.zeros(2, 2),)]}, TypeError, "length 1"),
        ({"val_loader": []}, ValueError, "val_loader is empty"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs: dict, error: type, fragment: str) -> None:
    model = mlp()
    x, y = blobs(8)
    arguments = {
        "train_loader": TinyLoader(x, y, 4),
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.1),
        "progress": False,
        "device": "cpu",
    } | kwargs
    train_loader = arguments.pop("train_loader")
    with pytest.raises(error) as raised:
        fit(model, train_loader, **arguments)
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"patience": 0}, "patience=0"),
        ({"patience": 2, "monitor": "loss"}, "monitor='loss'"),
        ({"patience": 2, "min_delta": -0.1}, "min_delta=-0.1"),
    ],
)
def test_early_stopping_rejects_bad_arguments(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError) as raised:
        EarlyStopping(**kwargs)
    assert fragment in str(raised.value)


def test_fit_trains_channels_last_and_gives_the_model_back_contiguous() -> None:
    torch.manual_seed(0)
    model = SmallCNN(4, widths=(8, 8, 16, 16))
    params = list(model.parameters())
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 4
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    seen = []
    model.stem.register_forward_pre_hook(
        lambda _, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    fit(model, TinyLoader(x, y, 4), optimizer=optimizer, epochs=2, progress=False, device="cpu")
    assert seen == [True] * 4
    assert all(p.is_contiguous() for p in model.parameters())
    assert all(a is b for a, b in zip(model.parameters(), params, strict=True))
    model.stem[0].weight.view(8, -1)  # works only on contiguous weights
    evaluate(model, TinyLoader(x, y, 4), device="cpu")
    assert all(p.is_contiguous() for p in model.parameters())


# --- bad input: an error that names the argument, the value and the fix, before any step -----


class OnePassLoader:
    """Has a len() but, like a generator, yields its batches only once."""

    def __init__(self, batches: list) -> None:
        self.batches = iter(batches)
        self.n = len(batches)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return self.batches


def _sgd(model: nn.Module, lr: object = 0.1) -> torch.optim.Optimizer:
    """SGD whose first group's lr is set afterwards, so values SGD itself refuses get through."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.param_groups[0]["lr"] = lr
    return optimizer


@pytest.mark.parametrize(
    ("make_targets", "kwargs", "error", "message"),
    [
        (lambda y: y[:, None], {}, ValueError, r"shape \(32, 1\).*targets\.squeeze\(1\)"),
        (lambda y: y + 5, {}, ValueError, r"target label 7 is out of range .* 3 outputs"),
        (lambda y: y - 1, {}, ValueError, r"target label -1 is out of range"),
        (lambda y: y, {"grad_clip": "1"}, TypeError, r"grad_clip='1' \(str\) must be a real"),
        (lambda y: y, {"grad_clip": math.inf}, ValueError, r"grad_clip=inf must be a finite"),
        (lambda y: y, {"epochs": True}, ValueError, r"epochs=True must be a positive integer"),
        (lambda y: y, {"lr": -0.1}, ValueError, r"group 0 .* lr=-0\.1.*climbs the loss"),
        (lambda y: y, {"lr": math.nan}, ValueError, r"lr=nan"),
    ],
)
def test_fit_rejects_bad_input_before_changing_the_model(
    make_targets, kwargs: dict, error: type, message: str
) -> None:
    x, y = blobs(32)
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lr = kwargs.pop("lr", 0.1)
    with pytest.raises(error, match=message):
        fit(model, [(x, make_targets(y))], optimizer=_sgd(model, lr), progress=False, **kwargs)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_fit_on_a_loader_used_up_after_one_epoch_says_so() -> None:
    x, y = blobs(32)
    model = mlp()
    loader = OnePassLoader([(x, y)])
    with pytest.raises(ValueError, match=r"train_loader yielded no batches in epoch 2"):
        fit(model, loader, optimizer=_sgd(model), epochs=2, progress=False)


def test_evaluate_on_a_loader_without_batches_says_so() -> None:
    x, y = blobs(32)
    loader = OnePassLoader([(x, y)])
    list(loader)  # used up
    with pytest.raises(ValueError, match=r"loader yielded no batches.*a list, a DataLoader"):
        evaluate(mlp(), loader, device="cpu")
    model = mlp()
    val = OnePassLoader([(x, y)])
    with pytest.raises(ValueError, match=r"val_loader yielded no batches"):
        fit(model, [(x, y)], val, optimizer=_sgd(model), epochs=2, progress=False)


def test_evaluate_checks_labels_against_the_model_outputs() -> None:
    x, y = blobs(32)
    with pytest.raises(ValueError, match=r"target label 9 is out of range"):
        evaluate(mlp(), [(x, torch.full_like(y, 9))], device="cpu")


def test_a_zero_learning_rate_and_probability_targets_stay_allowed() -> None:
    x, y = blobs(32)
    model = mlp()
    fit(model, [(x, y)], optimizer=_sgd(model, 0.0), progress=False)
    soft = torch.nn.functional.one_hot(y, 3).float()  # class probabilities, shape (B, C)
    fit(model, [(x, soft)], optimizer=_sgd(model), progress=False)


def test_without_amp_every_step_goes_through_a_disabled_scaler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    scalers: list[torch.amp.GradScaler] = []

    class RecordingScaler(torch.amp.GradScaler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            scalers.append(self)

        def scale(self, outputs):
            calls.append("scale")
            return super().scale(outputs)

        def unscale_(self, optimizer) -> None:
            calls.append("unscale_")
            super().unscale_(optimizer)

        def step(self, optimizer, *args, **kwargs):
            calls.append("step")
            return super().step(optimizer, *args, **kwargs)

        def update(self, new_scale=None) -> None:
            calls.append("update")
            super().update(new_scale)

    monkeypatch.setattr(torch.amp, "GradScaler", RecordingScaler)
    x, y = blobs()
    model = mlp()
    make_fit(model, TinyLoader(x, y, 32), epochs=2, device="cpu", amp=None, grad_clip=1.0)
    assert len(scalers) == 1 and not scalers[0].is_enabled()
    assert calls == ["scale", "unscale_", "step", "update"] * 6

    # the disabled scaler changes no number: same weights as the plain loop written out
    reference = mlp()
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.05)
    for _ in range(2):
        for xb, yb in TinyLoader(x, y, 32):
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(reference(xb), yb).backward()
            nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
            optimizer.step()
    want = reference.state_dict()
    for name, got in model.state_dict().items():
        assert torch.equal(got, want[name]), name


def test_an_aux_loss_in_the_model_output_is_added_to_the_loss() -> None:
    class Output:
        def __init__(self, logits: torch.Tensor, aux_loss: torch.Tensor) -> None:
            self.logits, self.aux_loss = logits, aux_loss

    class WithAuxLoss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = mlp()

        def forward(self, x: torch.Tensor) -> Output:
            return Output(self.net(x), torch.tensor(0.25))

    x, y = blobs()
    model = WithAuxLoss()
    loader = TinyLoader(x, y, 96)
    history = make_fit(model, loader, loader, lr=0.0, epochs=1, device="cpu")
    plain = evaluate(model.net, loader, device="cpu").loss
    assert history.train_loss[0] == pytest.approx(plain + 0.25)
    assert history.val_loss[0] == pytest.approx(plain + 0.25)
    logits, _ = predict(model, loader, device="cpu")
    assert logits.shape == (96, 3)

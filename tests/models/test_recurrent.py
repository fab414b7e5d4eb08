"""LRCN (CNN + LSTM), the LSTM head on pre-extracted features, ConvLSTM and GRU-RCN."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision

from deepvideo.models import create_model
from deepvideo.models.recurrent import ConvGRUCell, ConvLSTM, ConvLSTMCell

from conftest import assert_forward_backward

WIDTHS = (8, 16)
TINY = {
    "lrcn": dict(widths=WIDTHS, hidden_size=16),
    "convlstm": dict(stem_widths=(8, 8), hidden_channels=(8, 8)),
    "gru_rcn": dict(widths=(8, 16), hidden_channels=(4, 8)),
}
CLIP = (2, 3, 4, 16, 16)  # (B, C, T, H, W)


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- ConvLSTM ---------------------------------------------------------------------------


def _reference_step(cell: ConvLSTMCell, x, h, c):
    """Shi et al. (2015) eq. 3 written out gate by gate with explicit convolutions."""
    hid = cell.hidden_channels
    wx, bx, wh = cell.input_conv.weight, cell.input_conv.bias, cell.state_conv.weight
    px, ph = cell.input_conv.padding, cell.state_conv.padding

    def gate(k):  # W_xk * x_t + W_hk * h_{t-1} + b_k, gate order i, f, c, o
        s = slice(k * hid, (k + 1) * hid)
        return F.conv2d(x, wx[s], bx[s], padding=px) + F.conv2d(h, wh[s], padding=ph)

    i = torch.sigmoid(gate(0) + cell.w_ci * c)
    f = torch.sigmoid(gate(1) + cell.w_cf * c)
    c_new = f * c + i * torch.tanh(gate(2))
    o = torch.sigmoid(gate(3) + cell.w_co * c_new)
    return o * torch.tanh(c_new), c_new


@pytest.mark.parametrize("peephole_size", [None, (6, 7)])
def test_convlstm_cell_matches_gate_equations(peephole_size):
    torch.manual_seed(0)
    cell = ConvLSTMCell(3, 4, kernel_size=3, state_kernel_size=5, peephole_size=peephole_size)
    with torch.no_grad():  # peepholes start at zero: give them values so they are exercised
        for p in (cell.w_ci, cell.w_cf, cell.w_co):
            p.normal_()
    x, h, c = torch.randn(2, 3, 6, 7), torch.randn(2, 4, 6, 7), torch.randn(2, 4, 6, 7)
    h_new, c_new = cell(x, (h, c))
    h_ref, c_ref = _reference_step(cell, x, h, c)
    torch.testing.assert_close(h_new, h_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(c_new, c_ref, atol=1e-6, rtol=0)
    assert cell.w_ci.shape == ((4, 1, 1) if peephole_size is None else (4, 6, 7))


def test_convlstm_cell_parameter_count():
    c_in, hid, k, ks = 3, 4, 3, 5
    cell = ConvLSTMCell(c_in, hid, kernel_size=k, state_kernel_size=ks)
    assert _params(cell) == 4 * hid * c_in * k * k + 4 * hid + 4 * hid * hid * ks * ks + 3 * hid
    full = ConvLSTMCell(c_in, hid, kernel_size=k, state_kernel_size=ks, peephole_size=(6, 7))
    assert _params(full) == _params(cell) + 3 * hid * (6 * 7 - 1)


def test_convlstm_sequence_and_states():
    torch.manual_seed(0)
    net = ConvLSTM(3, (4, 5), kernel_size=3, state_kernel_size=3)
    video = torch.randn(2, 3, 6, 8, 8)
    outputs, states = net(video)
    assert outputs.shape == (2, 5, 6, 8, 8)
    assert [h.shape[1] for h, _ in states] == [4, 5]
    torch.testing.assert_close(outputs[:, :, -1], states[-1][0])
    # Carrying the states across two halves gives the same sequence as one pass.
    first, mid_states = net(video[:, :, :3])
    second, end_states = net(video[:, :, 3:], mid_states)
    torch.testing.assert_close(torch.cat([first, second], dim=2), outputs)
    torch.testing.assert_close(end_states[-1][1], states[-1][1])


def test_convlstm_cell_errors():
    with pytest.raises(ValueError, match="state_kernel_size must be odd"):
        ConvLSTMCell(3, 4, state_kernel_size=4)
    cell = ConvLSTMCell(3, 4, peephole_size=(6, 6))
    with pytest.raises(ValueError, match="peephole_size"):
        cell(torch.randn(1, 3, 5, 5))


# --- GRU-RCN ----------------------------------------------------------------------------


def test_conv_gru_cell_matches_gate_equations():
    """Ballas et al. (2016) eq. 3 with explicit convolutions from the cell's weights."""
    torch.manual_seed(0)
    cell = ConvGRUCell(3, 4, kernel_size=3)
    x, h = torch.randn(2, 3, 6, 7), torch.randn(2, 4, 6, 7)
    w, b = cell.input_conv.weight, cell.input_conv.bias
    u_zr, u = cell.gate_conv.weight, cell.candidate_conv.weight

    def conv(inp, weight, k, bias=None):
        return F.conv2d(inp, weight[k * 4:(k + 1) * 4], None if bias is None else bias[k * 4:(k + 1) * 4],
                        padding=1)

    z = torch.sigmoid(conv(x, w, 0, b) + conv(h, u_zr, 0))
    r = torch.sigmoid(conv(x, w, 1, b) + conv(h, u_zr, 1))
    candidate = torch.tanh(conv(x, w, 2, b) + F.conv2d(r * h, u, padding=1))
    torch.testing.assert_close(cell(x, h), (1 - z) * h + z * candidate, atol=1e-6, rtol=0)
    assert sum(p.numel() for p in cell.parameters()) == 3 * 4 * 3 * 9 + 3 * 4 + 3 * 4 * 4 * 9


def test_gru_rcn_one_gru_per_cnn_stage():
    torch.manual_seed(0)
    model = create_model("gru_rcn", num_classes=5, **TINY["gru_rcn"])
    maps = model.stage_maps(torch.randn(3, 3, 16, 16))
    assert [tuple(m.shape) for m in maps] == [(3, 8, 16, 16), (3, 16, 8, 8)]
    cnn = 3 * 8 * 9 + 2 * 8 + 8 * 16 * 9 + 2 * 16
    grus = sum(3 * h * c * 9 + 3 * h + 3 * h * h * 9 for c, h in ((8, 4), (16, 8)))
    assert _params(model) == cnn + grus + (4 * 5 + 5) + (8 * 5 + 5)
    with pytest.raises(ValueError, match="same length"):
        create_model("gru_rcn", num_classes=5, widths=(8, 16), hidden_channels=(4,))


# --- LRCN -------------------------------------------------------------------------------


def test_lrcn_outputs_per_frame_and_per_clip():
    torch.manual_seed(0)
    video = torch.randn(CLIP)
    model = create_model("lrcn", num_classes=5, **TINY["lrcn"]).eval()
    per_frame = model.frame_logits(video)
    assert per_frame.shape == (2, 4, 5)
    torch.testing.assert_close(model(video), per_frame.mean(dim=1))
    features = model.features(video)
    assert features.shape == (2, 4, WIDTHS[-1])
    torch.testing.assert_close(model.forward_features(features), model(video))
    last = create_model("lrcn", num_classes=5, clip_output="last", **TINY["lrcn"]).eval()
    torch.testing.assert_close(last(video), last.frame_logits(video)[:, -1])
    # The LSTM sees order: logits at step 0 do not depend on later frames.
    changed = video.clone()
    changed[:, :, 3] = 0
    torch.testing.assert_close(model.frame_logits(changed)[:, 0], per_frame[:, 0])
    assert not torch.allclose(model.frame_logits(changed)[:, 3], per_frame[:, 3])


def test_lstm_head_parameter_count_and_transfer_to_lrcn():
    d, hid, k = 16, 12, 5
    head = create_model("lstm_head", num_classes=k, feature_dim=d, hidden_size=hid)
    assert _params(head) == 4 * (d * hid + hid * hid + 2 * hid) + hid * k + k
    assert head(torch.randn(3, 7, d)).shape == (3, k)
    # A head trained on pre-extracted features drops into the full model.
    model = create_model("lrcn", num_classes=k, widths=(8, d), hidden_size=hid).eval()
    model.head.load_state_dict(head.state_dict())
    features = model.features(torch.randn(CLIP))
    torch.testing.assert_close(model.forward_features(features), head.eval()(features))


@pytest.mark.parametrize("delta, expected", [
    (1.0, [1, 1, 1, 1, 1, 1, 1]),  # always update: a plain LSTM
    (0.2, [1, 0, 0, 1, 0, 0, 1]),  # u~ accumulates 0.2 per skipped step until it rounds to 1
    (0.0, [1, 0, 0, 0, 0, 0, 0]),  # never update after the first step
])
def test_skip_lstm_update_gate(delta, expected):
    torch.manual_seed(0)
    head = create_model("lstm_head", num_classes=3, feature_dim=6, hidden_size=5, skip=True)
    with torch.no_grad():  # constant update probability Δu~ = delta
        head.lstm.update_prob.weight.zero_()
        head.lstm.update_prob.bias.fill_(torch.logit(torch.tensor(delta), eps=1e-12))
    features = torch.randn(2, 7, 6)
    logits, updates = head.step_outputs(features)
    assert updates.tolist() == [expected, expected]
    # Reference: a plain LSTM with the same weights that reads only the updated steps;
    # every step shows the output of the latest update.
    plain = torch.nn.LSTM(6, 5, batch_first=True)
    plain.load_state_dict({f"{k}_l0": v for k, v in head.lstm.cell.state_dict().items()})
    kept = plain(features[:, [t for t, u in enumerate(expected) if u]])[0]
    latest = torch.tensor(expected).cumsum(0) - 1
    torch.testing.assert_close(logits, head.fc(kept[:, latest]))


def test_skip_lstm_budget_loss_trains_the_update_gate():
    torch.manual_seed(0)
    head = create_model("lstm_head", num_classes=3, feature_dim=6, hidden_size=5, skip=True)
    logits, updates = head.step_outputs(torch.randn(2, 7, 6))
    (1e-2 * updates.sum(dim=1).mean()).backward()  # the budget loss alone
    assert head.lstm.update_prob.bias.grad.abs().item() > 0
    with pytest.raises(ValueError, match="skip=True supports num_layers=1"):
        create_model("lrcn", num_classes=3, skip=True, num_layers=2)
    model = create_model("lrcn", num_classes=3, skip=True, **TINY["lrcn"])
    assert model(torch.randn(CLIP)).shape == (2, 3)


def test_lrcn_freeze_cnn():
    torch.manual_seed(0)
    model = create_model("lrcn", num_classes=3, freeze_cnn=True, **TINY["lrcn"]).train()
    assert not model.cnn.training and model.head.training
    bn = model.cnn[1]
    running_mean = bn.running_mean.clone()
    model(torch.randn(CLIP)).sum().backward()
    assert all(p.grad is None for p in model.cnn.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    torch.testing.assert_close(bn.running_mean, running_mean)


def test_lrcn_resnet18_backbone_from_local_weights(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = create_model("lrcn", num_classes=4, backbone="resnet18", backbone_weights=str(path),
                         hidden_size=8).eval()
    torch.testing.assert_close(model.cnn.conv1.weight, reference.conv1.weight)
    assert model.features(torch.randn(1, 3, 2, 32, 32)).shape == (1, 2, 512)
    assert model(torch.randn(1, 3, 2, 32, 32)).shape == (1, 4)

    state = reference.state_dict()
    del state["layer1.0.conv1.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match=r"partial\.pth: key 'layer1\.0\.conv1\.weight' is missing"):
        create_model("lrcn", num_classes=4, backbone="resnet18",
                     backbone_weights=str(tmp_path / "partial.pth"))
    with pytest.raises(ValueError, match="nowhere.pth does not exist"):
        create_model("lrcn", num_classes=4, backbone="resnet18",
                     backbone_weights=str(tmp_path / "nowhere.pth"))


# --- all recurrent models ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TINY))
def test_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, **TINY[name])
    assert_forward_backward(model, torch.randn(CLIP), (2, 5))


def test_convlstm_classifier_parameter_count():
    model = create_model("convlstm", num_classes=5, **TINY["convlstm"])
    stem = 3 * 8 * 9 + 2 * 8 + 8 * 8 * 9 + 2 * 8
    cell = 4 * 8 * 8 * 9 + 4 * 8 + 4 * 8 * 8 * 9 + 3 * 8  # 8 -> 8 channels, 3x3 kernels
    assert _params(model) == stem + 2 * cell + 8 * 5 + 5


@pytest.mark.parametrize("name", ["lrcn", "convlstm", "gru_rcn", "lstm_head"])
def test_overfits_a_few_clips(name, overfit):
    torch.manual_seed(0)
    if name == "lstm_head":
        model = create_model(name, num_classes=3, feature_dim=16, hidden_size=16)
        inputs = torch.randn(6, 4, 16)
    else:
        model = create_model(name, num_classes=3, **TINY[name])
        inputs = torch.randn(6, 3, 4, 8, 8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    losses = overfit(model, inputs, labels, steps=25, lr=1e-2)
    assert losses[-1] < 0.3 * losses[0]


def test_bad_options():
    with pytest.raises(ValueError, match="backbone must be 'small' or 'resnet18'"):
        create_model("lrcn", num_classes=3, backbone="vgg16")
    with pytest.raises(ValueError, match="clip_output"):
        create_model("lrcn", num_classes=3, clip_output="first")
    with pytest.raises(ValueError, match="no option 'hidden'"):
        create_model("convlstm", num_classes=3, hidden=(8,))

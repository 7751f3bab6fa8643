"""Independent re-implementations of the published super-resolution networks, built the way their repositories
build them, so their ``state_dict`` keys are the published ones:

* ``BasicSRRRDBNet``: XPixelGroup/BasicSR ``basicsr/archs/rrdbnet_arch.py`` (``conv_first``, ``body.N.rdb1.conv1``,
  ``conv_body``, ``conv_up1/2``, ``conv_hr``, ``conv_last``; x2 / x1 pixel-unshuffle the input by 2 / 4);
  Real-ESRGAN's RRDB models are this class.
* ``ESRGANRepoRRDBNet``: xinntao/ESRGAN ``RRDBNet_arch.py`` (``RRDB_trunk.N.RDB1.conv1``, ``trunk_conv``,
  ``upconv1/2``, ``HRconv``), x4 only.
* ``OldArchRRDBNet``: the original ``model.N`` layout of xinntao/BasicSR's old ``codes/models/modules/
  architecture.py`` + ``block.py`` (``B.sequential`` flattens nested Sequentials; ``conv_block`` is
  Sequential(conv, act); ``ShortcutBlock`` holds ``sub``) — what ``RRDB_ESRGAN_x4_old_arch.pth`` holds.
* ``SRVGGNetCompact``: xinntao/Real-ESRGAN ``realesrgan/archs/srvgg_arch.py``.

They share no code with gandeploy: the import tests compare gandeploy's rebuilt networks with these.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F


def pixel_unshuffle(x: torch.Tensor, scale: int) -> torch.Tensor:
    """BasicSR ``arch_util.pixel_unshuffle``: view + permute + reshape."""
    b, c, hh, hw = x.size()
    out_channel = c * (scale**2)
    h, w = hh // scale, hw // scale
    x_view = x.view(b, c, h, scale, w, scale)
    return x_view.permute(0, 1, 3, 5, 2, 4).reshape(b, out_channel, h, w)


# ------------------------------------------------------------------ BasicSR / Real-ESRGAN
class ResidualDenseBlock(nn.Module):
    def __init__(self, num_feat=64, num_grow_ch=32):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, num_feat, num_grow_ch=32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class BasicSRRRDBNet(nn.Module):
    def __init__(self, num_in_ch, num_out_ch, scale=4, num_feat=64, num_block=23, num_grow_ch=32):
        super().__init__()
        self.scale = scale
        if scale == 2:
            num_in_ch = num_in_ch * 4
        elif scale == 1:
            num_in_ch = num_in_ch * 16
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x):
        if self.scale == 2:
            feat = pixel_unshuffle(x, scale=2)
        elif self.scale == 1:
            feat = pixel_unshuffle(x, scale=4)
        else:
            feat = x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


# ------------------------------------------------------------------ xinntao/ESRGAN RRDBNet_arch.py
class ResidualDenseBlock_5C(nn.Module):  # noqa: N801 - the upstream class name
    def __init__(self, nf=64, gc=32, bias=True):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1, bias=bias)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1, bias=bias)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1, bias=bias)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1, bias=bias)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1, bias=bias)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        return self.conv5(torch.cat((x, x1, x2, x3, x4), 1)) * 0.2 + x


class RepoRRDB(nn.Module):
    def __init__(self, nf, gc=32):
        super().__init__()
        self.RDB1 = ResidualDenseBlock_5C(nf, gc)
        self.RDB2 = ResidualDenseBlock_5C(nf, gc)
        self.RDB3 = ResidualDenseBlock_5C(nf, gc)

    def forward(self, x):
        return self.RDB3(self.RDB2(self.RDB1(x))) * 0.2 + x


class ESRGANRepoRRDBNet(nn.Module):
    def __init__(self, in_nc, out_nc, nf, nb, gc=32):
        super().__init__()
        self.conv_first = nn.Conv2d(in_nc, nf, 3, 1, 1, bias=True)
        self.RRDB_trunk = nn.Sequential(*[RepoRRDB(nf, gc) for _ in range(nb)])
        self.trunk_conv = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)
        self.upconv1 = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)
        self.upconv2 = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)
        self.HRconv = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1, bias=True)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x):
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.RRDB_trunk(fea))
        fea = self.lrelu(self.upconv1(F.interpolate(fea, scale_factor=2, mode="nearest")))
        fea = self.lrelu(self.upconv2(F.interpolate(fea, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.HRconv(fea)))


# ------------------------------------------------------------------ old BasicSR architecture.py / block.py
def sequential(*args):
    """block.py ``sequential``: one module is returned as is; nested Sequentials are flattened; Nones dropped."""
    if len(args) == 1:
        return args[0]
    modules = []
    for module in args:
        if isinstance(module, nn.Sequential):
            modules.extend(module.children())
        elif isinstance(module, nn.Module):
            modules.append(module)
    return nn.Sequential(*modules)


def conv_block(in_nc, out_nc, kernel_size=3, act_type="leakyrelu"):
    """block.py ``conv_block`` with pad_type 'zero', no norm, mode 'CNA': Sequential(conv[, act])."""
    conv = nn.Conv2d(in_nc, out_nc, kernel_size, 1, (kernel_size - 1) // 2, bias=True)
    act = nn.LeakyReLU(0.2, True) if act_type == "leakyrelu" else None
    return sequential(None, conv, None, act)


class ShortcutBlock(nn.Module):
    def __init__(self, submodule):
        super().__init__()
        self.sub = submodule

    def forward(self, x):
        return x + self.sub(x)


class OldRDB(nn.Module):
    def __init__(self, nc, gc=32):
        super().__init__()
        self.conv1 = conv_block(nc, gc)
        self.conv2 = conv_block(nc + gc, gc)
        self.conv3 = conv_block(nc + 2 * gc, gc)
        self.conv4 = conv_block(nc + 3 * gc, gc)
        self.conv5 = conv_block(nc + 4 * gc, nc, act_type=None)

    def forward(self, x):
        x1 = self.conv1(x)
        x2 = self.conv2(torch.cat((x, x1), 1))
        x3 = self.conv3(torch.cat((x, x1, x2), 1))
        x4 = self.conv4(torch.cat((x, x1, x2, x3), 1))
        return self.conv5(torch.cat((x, x1, x2, x3, x4), 1)).mul(0.2) + x


class OldRRDB(nn.Module):
    def __init__(self, nc, gc=32):
        super().__init__()
        self.RDB1 = OldRDB(nc, gc)
        self.RDB2 = OldRDB(nc, gc)
        self.RDB3 = OldRDB(nc, gc)

    def forward(self, x):
        return self.RDB3(self.RDB2(self.RDB1(x))).mul(0.2) + x


def upconv_block(in_nc, out_nc):
    return sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv_block(in_nc, out_nc))


class OldArchRRDBNet(nn.Module):
    def __init__(self, in_nc, out_nc, nf, nb, gc=32, upscale=4):
        super().__init__()
        n_upscale = int(math.log(upscale, 2))
        fea_conv = conv_block(in_nc, nf, act_type=None)
        rb_blocks = [OldRRDB(nf, gc) for _ in range(nb)]
        lr_conv = conv_block(nf, nf, act_type=None)
        upsampler = [upconv_block(nf, nf) for _ in range(n_upscale)]
        hr_conv0 = conv_block(nf, nf)
        hr_conv1 = conv_block(nf, out_nc, act_type=None)
        self.model = sequential(fea_conv, ShortcutBlock(sequential(*rb_blocks, lr_conv)), *upsampler, hr_conv0,
                                hr_conv1)

    def forward(self, x):
        return self.model(x)


# ------------------------------------------------------------------ Real-ESRGAN srvgg_arch.py
class SRVGGNetCompact(nn.Module):
    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type="prelu"):
        super().__init__()
        self.upscale = upscale

        def activation():
            if act_type == "relu":
                return nn.ReLU(inplace=True)
            if act_type == "prelu":
                return nn.PReLU(num_parameters=num_feat)
            return nn.LeakyReLU(negative_slope=0.1, inplace=True)

        self.body = nn.ModuleList([nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), activation()])
        for _ in range(num_conv):
            self.body.extend([nn.Conv2d(num_feat, num_feat, 3, 1, 1), activation()])
        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x):
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


def randomised(net: nn.Module, seed: int, std: float = 0.05) -> nn.Module:
    """``net`` with every parameter redrawn N(0, std) (PReLU slopes U(0, 0.3)) from ``seed``, in eval mode: trained
    weights are not near the default init, and a wrong key mapping must show in the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if isinstance(dict(net.named_modules()).get(name.rsplit(".", 1)[0]), nn.PReLU):
                p.copy_(torch.rand(p.shape, generator=gen) * 0.3)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    return net.eval()


def save_like_basicsr(net: nn.Module, path, *, ema: nn.Module | None = None) -> None:
    """BasicSR ``save_network(..., param_key=['params', 'params_ema'])``: both states in one dict."""
    state = OrderedDict(params=net.state_dict())
    if ema is not None:
        state["params_ema"] = ema.state_dict()
    torch.save(state, path)

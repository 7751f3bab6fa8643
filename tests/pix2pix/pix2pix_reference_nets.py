"""An independent re-implementation of the pix2pix reference generator, built the way its repository builds it.

junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py``: ``define_G(input_nc, output_nc, ngf, 'unet_128' |
'unet_256', norm, use_dropout)`` → ``UnetGenerator(num_downs 7 | 8)`` of nested ``UnetSkipConnectionBlock``s,
norm 'batch' → ``functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)``, 'instance' →
``functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)``, conv bias only with
InstanceNorm, 'normal' init with gain 0.02. It shares no code with gandeploy: the import tests compare gandeploy's
rebuilt network with this one, saved the way ``BaseModel.save_networks`` saves it.
"""

from __future__ import annotations

import functools

import torch
from torch import nn


def norm_factory(kind):
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)


class SkipBlock(nn.Module):
    """The reference's UnetSkipConnectionBlock (same layer order, so the same state_dict keys)."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        use_bias = norm_layer.func == nn.InstanceNorm2d
        input_nc = outer_nc if input_nc is None else input_nc
        down_conv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        if outermost:
            seq = [down_conv, submodule, nn.ReLU(True),
                   nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1), nn.Tanh()]
        elif innermost:
            seq = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True),
                   nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias),
                   norm_layer(outer_nc)]
        else:
            seq = [nn.LeakyReLU(0.2, True), down_conv, norm_layer(inner_nc), submodule, nn.ReLU(True),
                   nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias),
                   norm_layer(outer_nc)]
            if use_dropout:
                seq = seq + [nn.Dropout(0.5)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class RefUnet(nn.Module):
    """The reference's UnetGenerator: innermost 8ngf block, num_downs - 5 more 8ngf blocks (dropout), then 4ngf,
    2ngf, ngf and the outermost block."""

    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        block = SkipBlock(ngf * 8, ngf * 8, norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            block = SkipBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout)
        for outer, inner in ((4, 8), (2, 4), (1, 2)):
            block = SkipBlock(ngf * outer, ngf * inner, submodule=block, norm_layer=norm_layer)
        self.model = SkipBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                               norm_layer=norm_layer)

    def forward(self, x):
        return self.model(x)


def define_unet(input_nc, output_nc, ngf, net_g, norm="batch", use_dropout=True, seed=0, init_gain=0.02):
    """define_G for 'unet_128' / 'unet_256' with the 'normal' init (``--init_gain``, 0.02 by default)."""
    torch.manual_seed(seed)
    num_downs = {"unet_128": 7, "unet_256": 8}[net_g]
    net = RefUnet(input_nc, output_nc, num_downs, ngf, norm_layer=norm_factory(norm), use_dropout=use_dropout)

    def init(m):
        name = m.__class__.__name__
        if hasattr(m, "weight") and ("Conv" in name or "Linear" in name):
            nn.init.normal_(m.weight.data, 0.0, init_gain)
            if getattr(m, "bias", None) is not None:
                nn.init.constant_(m.bias.data, 0.0)
        elif "BatchNorm2d" in name:
            nn.init.normal_(m.weight.data, 1.0, init_gain)
            nn.init.constant_(m.bias.data, 0.0)

    net.apply(init)
    return net


def warm_up(net, size, steps=3, batch=4, seed=0):
    """A few train-mode forward passes on random pictures, so BatchNorm's running statistics are not the
    initial 0 / 1 (as after training); affine parameters are nudged away from 1 / 0 too."""
    gen = torch.Generator().manual_seed(seed)
    net.train()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.add_(0.3 * torch.randn(m.weight.shape, generator=gen))
                m.bias.add_(0.3 * torch.randn(m.bias.shape, generator=gen))
        for _ in range(steps):
            net(torch.rand(batch, net.model.model[0].in_channels, size, size, generator=gen) * 2 - 1)
    net.eval()
    return net


def sample_stats_forward(net, x):
    """What the reference test.py computes without --eval, with dropout layers in eval mode: BatchNorm on each
    picture's own statistics (train mode at batch size 1), one picture at a time; running stats untouched."""
    import copy

    ref = copy.deepcopy(net).train()
    for m in ref.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    with torch.no_grad():
        return torch.cat([ref(x[i:i + 1]) for i in range(x.shape[0])])

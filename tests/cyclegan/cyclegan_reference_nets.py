"""Independent re-implementations of the reference networks, built the way their repositories build them.

* ``ResnetGenerator`` / ``ResnetBlock`` from junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py``
  (norm='instance' → ``functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)``,
  use_bias = norm is InstanceNorm, padding_type='reflect', no dropout);
* ``Generator`` from pytorch/examples ``dcgan/main.py`` (64x64), generalised to 32/128 the same way.

They share no code with gandeploy: the import tests compare gandeploy's rebuilt networks with these.
"""

from __future__ import annotations

import functools

import torch
from torch import nn


class ResnetBlock(nn.Module):
    def __init__(self, dim, padding_type, norm_layer, use_dropout, use_bias):
        super().__init__()
        self.conv_block = self.build_conv_block(dim, padding_type, norm_layer, use_dropout, use_bias)

    def build_conv_block(self, dim, padding_type, norm_layer, use_dropout, use_bias):
        conv_block = []
        p = 0
        if padding_type == "reflect":
            conv_block += [nn.ReflectionPad2d(1)]
        elif padding_type == "replicate":
            conv_block += [nn.ReplicationPad2d(1)]
        elif padding_type == "zero":
            p = 1
        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias), norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            conv_block += [nn.Dropout(0.5)]
        p = 0
        if padding_type == "reflect":
            conv_block += [nn.ReflectionPad2d(1)]
        elif padding_type == "replicate":
            conv_block += [nn.ReplicationPad2d(1)]
        elif padding_type == "zero":
            p = 1
        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias), norm_layer(dim)]
        return nn.Sequential(*conv_block)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False, n_blocks=6,
                 padding_type="reflect"):
        assert n_blocks >= 0
        super().__init__()
        if type(norm_layer) == functools.partial:  # noqa: E721 (as in the reference)
            use_bias = norm_layer.func == nn.InstanceNorm2d
        else:
            use_bias = norm_layer == nn.InstanceNorm2d
        model = [nn.ReflectionPad2d(3),
                 nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
                 norm_layer(ngf),
                 nn.ReLU(True)]
        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2**i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                      norm_layer(ngf * mult * 2),
                      nn.ReLU(True)]
        mult = 2**n_downsampling
        for i in range(n_blocks):
            model += [ResnetBlock(ngf * mult, padding_type=padding_type, norm_layer=norm_layer,
                                  use_dropout=use_dropout, use_bias=use_bias)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            model += [nn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1,
                                         output_padding=1, bias=use_bias),
                      norm_layer(int(ngf * mult / 2)),
                      nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3)]
        model += [nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0)]
        model += [nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, input):
        return self.model(input)


def reference_resnet_generator(input_nc=3, output_nc=3, ngf=64, n_blocks=9, seed=0):
    """As ``define_G(input_nc, output_nc, ngf, 'resnet_9blocks', norm='instance', use_dropout=False)``, with
    PyTorch's default init (non-zero biases everywhere, so every parameter matters in the comparison)."""
    torch.manual_seed(seed)
    norm = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    net = ResnetGenerator(input_nc, output_nc, ngf, norm_layer=norm, use_dropout=False, n_blocks=n_blocks)
    return net.eval()


class DCGANExampleGenerator(nn.Module):
    """pytorch/examples dcgan ``Generator`` (nz, ngf, nc as module-level globals there)."""

    def __init__(self, nz=100, ngf=64, nc=3, image_size=64):
        super().__init__()
        if image_size == 64:  # verbatim layout of the example
            self.main = nn.Sequential(
                nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
                nn.BatchNorm2d(ngf * 8),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * 4),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * 2),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
                nn.Tanh(),
            )
        else:  # the same pattern with one stage fewer (32) or more (128)
            stages = {32: [4, 2, 1], 128: [16, 8, 4, 2, 1]}[image_size]
            layers = [nn.ConvTranspose2d(nz, ngf * stages[0], 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * stages[0]),
                      nn.ReLU(True)]
            for a, b in zip(stages, stages[1:]):
                layers += [nn.ConvTranspose2d(ngf * a, ngf * b, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * b),
                           nn.ReLU(True)]
            layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
            self.main = nn.Sequential(*layers)

    def forward(self, input):
        return self.main(input)


def reference_dcgan_generator(nz=100, ngf=64, nc=3, image_size=64, seed=0):
    """An example generator with random weights and non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    net = DCGANExampleGenerator(nz, ngf, nc, image_size)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1.0, 0.1)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(123)
    return net.eval()

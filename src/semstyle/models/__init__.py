"""Networks: the VGG19 encoder, the AdaIN decoder and their weight loading."""

from semstyle.models.decoder import Decoder
from semstyle.models.vgg import TAPS, VGGEncoder

__all__ = ["TAPS", "Decoder", "VGGEncoder"]

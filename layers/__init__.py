"""Custom Keras 3 layers: `keras.ops` only, serializable, the same on TensorFlow, PyTorch and JAX.

See layers/README.md for one line on each.
"""

from layers.attention import (
    BahdanauAttention,
    LuongAttention,
    MultiHeadAttention,
    ScaledDotProductAttention,
)
from layers.cnn import (
    DenseBlock,
    FireModule,
    InceptionModule,
    LocalResponseNormalization,
    ResidualBlock,
    TransitionBlock,
)
from layers.conv import MatMulConv2DTranspose, SpaceToDepthConv2D, SubPixelConv2DTranspose
from layers.core import Maxout, Sampling
from layers.detection import (
    RoIPooling,
    RPNHead,
    SpatialPyramidPooling,
    YOLOHead,
    YOLOv1Loss,
    anchor_boxes,
    box_iou,
    non_max_suppression,
    yolo_boxes,
)
from layers.diffusion import SinusoidalTimeEmbedding, TimeResidualBlock
from layers.gan import ClipConstraint, ConcatLabel
from layers.im2col import Im2ColConv2D, Im2ColMaxPool2D, col2im, im2col
from layers.nade import NADE
from layers.pix2pix import PatchGAN, UNetDown, UNetUp
from layers.recurrent import ScratchGRUCell, ScratchLSTMCell, VanillaRNNCell
from layers.style import VGG19_LAYER_NAMES, GramMatrix, VGGFeatures
from layers.transformer import (
    PositionalEncoding,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
)
from layers.vit import ClassToken, LearnedPositionalEmbedding, PatchEmbedding

__all__ = [
    "VGG19_LAYER_NAMES",
    "BahdanauAttention",
    "ClassToken",
    "ClipConstraint",
    "ConcatLabel",
    "DenseBlock",
    "FireModule",
    "GramMatrix",
    "Im2ColConv2D",
    "Im2ColMaxPool2D",
    "InceptionModule",
    "LearnedPositionalEmbedding",
    "LocalResponseNormalization",
    "LuongAttention",
    "MatMulConv2DTranspose",
    "Maxout",
    "MultiHeadAttention",
    "NADE",
    "PatchEmbedding",
    "PatchGAN",
    "PositionalEncoding",
    "RPNHead",
    "ResidualBlock",
    "RoIPooling",
    "Sampling",
    "ScaledDotProductAttention",
    "ScratchGRUCell",
    "ScratchLSTMCell",
    "SinusoidalTimeEmbedding",
    "SpaceToDepthConv2D",
    "SpatialPyramidPooling",
    "SubPixelConv2DTranspose",
    "TransformerDecoderBlock",
    "TimeResidualBlock",
    "TransformerEncoderBlock",
    "TransitionBlock",
    "UNetDown",
    "UNetUp",
    "VanillaRNNCell",
    "VGGFeatures",
    "YOLOHead",
    "YOLOv1Loss",
    "anchor_boxes",
    "box_iou",
    "col2im",
    "im2col",
    "non_max_suppression",
    "yolo_boxes",
]

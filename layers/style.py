"""Style-transfer layers: Gram matrices and VGG19 features (A 9.8-9.10)."""

import keras
from keras import ops

# VGG19's convolutional base, as keras.applications.VGG19(include_top=False) names it.
VGG19_BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
VGG19_LAYER_NAMES = tuple(
    name
    for block, (_, convs) in enumerate(VGG19_BLOCKS, start=1)
    for name in [f"block{block}_conv{i}" for i in range(1, convs + 1)] + [f"block{block}_pool"]
)


@keras.saving.register_keras_serializable(package="layers")
class GramMatrix(keras.layers.Layer):
    """Gram matrix of feature maps: the channel-by-channel inner products over all positions.

    With the features of one image flattened to `F` of shape `(M, N)`, `M = height * width`
    positions and `N = channels`:

        G = F^T F,  G[c, d] = sum_p F[p, c] F[p, d]        (normalize=False)
        G = F^T F / M                                       (normalize=True)

    The notes (A 9.8 and 9.9) define the Gram as the plain `F^T F` and put the scaling in the style
    loss, `lambda_s = 1 / (4 M^2 N^2)`: this layer follows them, so `normalize` defaults to False.
    `normalize=True` divides by the number of positions `M`, which makes Gram matrices of different
    image sizes comparable (the style loss then needs only `1 / (4 N^2)`).

    An optional `region` map `R` of shape `(batch, height, width)` (or `(..., 1)`) multiplies the
    features first, `G = (F * R)^T (F * R)`: the per-class Gram `Gram(X_j S_ij)` of deep photo style
    transfer (A 9.10), where `R` is a segmentation mask propagated to the layer's size. The
    normalisation still divides by `height * width`.

    Shapes: `(batch, height, width, channels)` -> `(batch, channels, channels)`. Computed in
    float32 at least (a bfloat16 sum over many positions loses most of its digits).

    Args:
        normalize: divide by `height * width`.

    Call arguments:
        inputs: the features.
        region: optional map of shape `(batch, height, width)` or `(batch, height, width, 1)`.

    Example:

    >>> x = np.arange(8, dtype="float32").reshape(1, 2, 2, 2)
    >>> GramMatrix()(x)  # [[[56, 68], [68, 84]]]
    """

    def __init__(self, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.normalize = bool(normalize)

    @staticmethod
    def _check(input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(
                "GramMatrix expects features of shape (batch, height, width, channels), "
                f"got {input_shape}"
            )
        return input_shape

    def build(self, input_shape):
        self._check(input_shape)

    @staticmethod
    def _check_region(input_shape, region_shape):
        region_shape = tuple(region_shape)
        if len(region_shape) == 4 and region_shape[-1] == 1:
            region_shape = region_shape[:3]
        if len(region_shape) != 3 or any(
            a is not None and b is not None and a != b for a, b in zip(region_shape, input_shape[:3])
        ):
            raise ValueError(
                "GramMatrix expects a region of shape (batch, height, width) or (batch, height, "
                f"width, 1) matching features of shape {tuple(input_shape)}, got {tuple(region_shape)}"
            )

    def call(self, inputs, region=None):
        self._check(inputs.shape)
        dtype = "float64" if inputs.dtype == "float64" else "float32"
        shape = ops.shape(inputs)
        inputs = ops.cast(inputs, dtype)
        if region is not None:
            self._check_region(inputs.shape, region.shape)
            region = ops.reshape(ops.cast(region, dtype), (shape[0], shape[1], shape[2], 1))
            inputs = ops.multiply(inputs, region)
        features = ops.reshape(inputs, (shape[0], shape[1] * shape[2], shape[3]))
        gram = ops.einsum("bpc,bpd->bcd", features, features)
        if self.normalize:
            gram = ops.divide(gram, ops.cast(shape[1] * shape[2], dtype))
        return gram

    def compute_output_shape(self, input_shape):
        batch, _, _, channels = self._check(input_shape)
        return (batch, channels, channels)

    def compute_output_spec(self, inputs, region=None):
        if region is not None:
            self._check_region(inputs.shape, region.shape)
        dtype = "float64" if inputs.dtype == "float64" else "float32"
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=dtype)

    def get_config(self):
        return {**super().get_config(), "normalize": self.normalize}


@keras.saving.register_keras_serializable(package="layers")
class VGGFeatures(keras.layers.Layer):
    """Named intermediate outputs of VGG19's convolutional base, with max or average pooling.

    The layers are those of `keras.applications.VGG19(include_top=False)`, with the same names
    (`block1_conv1` ... `block5_conv4`, `block1_pool` ... `block5_pool`) and weight shapes: every
    convolution is 3x3, stride 1, "same" padding, ReLU, so `blockB_convI` is the notes' `reluB_I`;
    every pool is 2x2, stride 2. Only the layers up to the deepest requested one are built.

        pooling="max":  the network of keras.applications.VGG19 (neural style, A 9.9);
        pooling="avg":  MaxPooling2D replaced by AveragePooling2D (texture synthesis, A 9.8:
                        "VGG19 with MaxPooling replaced by AvgPooling").
        pool_padding="same": ceil-size pooling, which A 9.10's shape table needs
                        (700x530 -> 350x265 -> 175x133 -> 88x67 -> 44x34); Keras uses "valid".

    The input is expected preprocessed as VGG19 was trained (BGR, ImageNet mean subtracted:
    `keras.applications.vgg19.preprocess_input`); the layer does no preprocessing.

    Shapes: `(batch, height, width, 3)` -> `{name: (batch, h_name, w_name, channels_name)}` (or a
    list in `layer_names` order with `output_format="list"`); e.g. `block3_conv1` of a 64x64 input
    is `(batch, 16, 16, 256)`.

    Args:
        layer_names: names of the outputs to return (any of `VGG19_LAYER_NAMES`).
        pooling: "max" or "avg".
        weights: None (random initialisation) or "imagenet": copies the weights of
            `keras.applications.VGG19(weights="imagenet", include_top=False)` (downloaded once into
            the Keras cache) when the layer is built. Weights are state, not configuration:
            `get_config` records `weights=None`, and a saved `.keras` file carries the values.
        pool_padding: "valid" (Keras VGG19) or "same".
        output_format: "dict" ({name: tensor}) or "list" (tensors in `layer_names` order).

    Example:

    >>> features = VGGFeatures(["block1_conv1", "block4_conv2"], pooling="avg")
    >>> out = features(np.zeros((1, 64, 64, 3), "float32"))
    >>> out["block4_conv2"].shape
    (1, 8, 8, 512)

    Use `copy_weights_from(model)` to take the weights of any VGG19 Keras model by layer name.
    """

    def __init__(
        self,
        layer_names=("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"),
        pooling="max",
        weights=None,
        pool_padding="valid",
        output_format="dict",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(layer_names, str):
            layer_names = [layer_names]
        unknown = [n for n in layer_names if n not in VGG19_LAYER_NAMES]
        if not layer_names or unknown:
            raise ValueError(
                f"VGGFeatures: layer_names must be a non-empty list of VGG19 layer names "
                f"({', '.join(VGG19_LAYER_NAMES)}), got {list(layer_names)}"
            )
        for arg, value, allowed in [
            ("pooling", pooling, ("max", "avg")),
            ("weights", weights, (None, "imagenet")),
            ("pool_padding", pool_padding, ("valid", "same")),
            ("output_format", output_format, ("dict", "list")),
        ]:
            if value not in allowed:
                raise ValueError(f"VGGFeatures: {arg} must be one of {allowed}, got {value!r}")
        self.layer_names = list(layer_names)
        self.pooling = pooling
        self.weights_source = weights
        self.pool_padding = pool_padding
        self.output_format = output_format

        depth = max(VGG19_LAYER_NAMES.index(n) for n in self.layer_names) + 1
        pool = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
        self._vgg_layers = []
        for name in VGG19_LAYER_NAMES[:depth]:
            if name.endswith("_pool"):
                layer = pool(2, strides=2, padding=pool_padding, name=name, dtype=self.dtype_policy)
            else:
                filters = VGG19_BLOCKS[int(name[5]) - 1][0]
                layer = keras.layers.Conv2D(
                    filters, 3, padding="same", activation="relu", name=name, dtype=self.dtype_policy
                )
            self._vgg_layers.append(layer)

    @staticmethod
    def _check(input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4 or input_shape[-1] != 3:
            raise ValueError(
                f"VGGFeatures expects images of shape (batch, height, width, 3), got {input_shape}"
            )
        return input_shape

    def build(self, input_shape):
        shape = self._check(input_shape)
        for layer in self._vgg_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        if self.weights_source == "imagenet":
            self.copy_weights_from(keras.applications.VGG19(weights="imagenet", include_top=False))

    def copy_weights_from(self, model):
        """Copies the weights of every VGG layer of this one from `model`'s layer of the same name
        (e.g. a `keras.applications.VGG19`); the layer must be built."""
        for layer in self._vgg_layers:
            if layer.weights:
                layer.set_weights(model.get_layer(layer.name).get_weights())

    def call(self, inputs):
        self._check(inputs.shape)
        outputs, x = {}, inputs
        for layer in self._vgg_layers:
            x = layer(x)
            if layer.name in self.layer_names:
                outputs[layer.name] = x
        return self._format(outputs)

    def _format(self, outputs):
        if self.output_format == "list":
            return [outputs[n] for n in self.layer_names]
        return {n: outputs[n] for n in self.layer_names}

    def compute_output_shape(self, input_shape):
        shapes, shape = {}, self._check(input_shape)
        for layer in self._vgg_layers:
            shape = layer.compute_output_shape(shape)
            shapes[layer.name] = tuple(shape)
        return self._format(shapes)

    def get_config(self):
        return {
            **super().get_config(),
            "layer_names": list(self.layer_names),
            "pooling": self.pooling,
            "weights": None,
            "pool_padding": self.pool_padding,
            "output_format": self.output_format,
        }

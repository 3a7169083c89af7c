"""The captioner of `image_captioning`: a CNN image feature conditions an LSTM decoder (as h0 and at
every step), its masked loss and learning-rate schedule, and the compiled greedy decoder; with the
NumPy forms of CS231n's `temporal_softmax_loss` and word-embedding backward pass that the tests
compare with."""

import numpy as np

from recipes import engine
from recipes.common import cli
from recipes.image_captioning.data import decode_ids

keras = cli.lazy_import("keras")


# -- the model -------------------------------------------------------------------------------------


def build_model(config, vocab_size):
    """(image, caption ids) -> word scores at every step; layers named for the greedy decoder.

    The assignment's model: a CNN turns the image into a feature F (the assignment's 512-d PCA of
    VGG16 fc7), the LSTM starts from h0 = F W_p + b_p and c0 = 0, reads the embedded caption W[C, :]
    without its last token (teacher forcing), and a time-distributed affine layer scores every word
    at every step. Sizes are CaptioningRNN's defaults: word vectors 128, hidden 128.

    Two changes make training use the image reliably. With the image entering only through h0, the
    LSTM first learns the captions' language, which lowers the loss with the image ignored, and can
    stay there: on torch, seed 0, 8 epochs gave every held-out image the same caption (held-out
    BLEU-4 0.20 against the baseline's 0.12, cross-entropy 0.77 nats/word). So (1) F is also
    concatenated to the word vector at every step, x_t = [W[w_t], F] (as in Donahue et al.'s LRCN):
    the colour or shape a step must name no longer has to survive the cell's updates since <START>;
    (2) F is layer-normalised, so that it neither swamps the small initial word vectors nor
    saturates the gates (and the learning rate warms up, `learning_rate`).
    """
    _register_loss()
    layers = keras.layers
    ops = keras.ops
    size = config.image_size
    image = keras.Input((size, size, 3), name="image")  # (N, S, S, 3)
    caption = keras.Input((None,), dtype="int32", name="caption")  # (N, T)
    x = image
    width = config.cnn_width
    for filters in (width, 2 * width, 2 * width):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        # batch norm makes the decoder start using the image sooner; momentum 0.9 so that the
        # statistics used for decoding settle within the few hundred steps of a short run
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.MaxPooling2D()(layers.ReLU()(x))
    # (N, S/8, S/8, 2 * width)
    x = layers.Flatten()(x)  # keeps where things are: above / left of (global pooling would not)
    # linear, as the assignment's PCA features (a ReLU here can die and cut the image off the LSTM),
    # then layer-normalised: F enters every step next to word vectors, and an unscaled F swamps them
    x = layers.Dense(config.feature_dim, name="image_affine")(x)
    features = layers.LayerNormalization(name="features")(x)  # F: (N, feature_dim)
    # h0 = F W_p + b_p; the notes: the same as the slide form h1 = tanh(W_xh x + W_hh h0 + W_ih F)
    # with h0 = 0
    h0 = layers.Dense(config.hidden_dim, name="init_h")(features)  # (N, H)
    words = layers.Embedding(vocab_size, config.wordvec_dim, name="embedding")(caption)  # (N, T, D)
    # x_t = [W[w_t], F]: the image at every step, not only through h0
    image_at_every_step = ops.ones_like(words[:, :, :1]) * ops.expand_dims(features, 1)
    inputs = ops.concatenate([words, image_at_every_step], axis=-1)  # (N, T, D + feature_dim)
    hidden = layers.LSTM(config.hidden_dim, return_sequences=True, name="lstm")(
        inputs, initial_state=[h0, ops.zeros_like(h0)]
    )  # (N, T, H)
    scores = layers.Dense(vocab_size, name="scores")(hidden)  # the temporal affine layer: (N, T, V)
    return keras.Model([image, caption], scores, name="captioner")


# -- the loss and the schedule ---------------------------------------------------------------------


def masked_caption_loss(targets, logits):
    """Mean softmax cross-entropy over the non-<NULL> targets (id 0 is padding and costs nothing).

    The assignment's `temporal_softmax_loss` sums instead and divides by the batch size.
    """
    ops = keras.ops
    targets = ops.cast(targets, "int32")
    ce = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    mask = ops.cast(ops.not_equal(targets, 0), ce.dtype)
    return ops.sum(ce * mask) / ops.maximum(ops.sum(mask), 1.0)


def _register_loss():
    """Registers the loss for `.keras` files (here, not at import: `--help` must not load keras)."""
    name = "image_captioning>masked_caption_loss"
    if keras.saving.get_registered_object(name) is None:
        keras.saving.register_keras_serializable(package="image_captioning")(masked_caption_loss)


def load_model(path):
    """A saved captioner, compiled with its masked loss (`keras.saving.load_model` after registering)."""
    _register_loss()
    return keras.saving.load_model(path)


def learning_rate(config, steps):
    """Linear warmup from 0 over `warmup_steps`, then a cosine decay to a tenth by the last step.

    The warm-up is part of the second change to the assignment (see `build_model`).
    """
    warmup = min(config.warmup_steps, steps - 1)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else config.learning_rate,
        max(steps - warmup, 1),
        alpha=0.1,
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


# -- greedy decoding -------------------------------------------------------------------------------


def make_decoder(model, max_length, jit=True):
    """greedy(images) -> (N, max_length) word ids, compiled with `engine.function` unless jit=False.

    Runs the trained layers one step at a time (the LSTM layer's cell): F and h0 from the image,
    c0 = 0, <START> (id 1) first, then the highest-scoring word of each step is fed back in next to
    F, for a fixed number of steps (ids after an <END> are meaningless).
    """
    ops = keras.ops
    outputs = [model.get_layer("features").output, model.get_layer("init_h").output]
    encoder = keras.Model(model.get_layer("image").output, outputs)
    embedding = model.get_layer("embedding")
    cell = model.get_layer("lstm").cell
    head = model.get_layer("scores")

    def greedy(images):
        features, h = encoder(images, training=False)
        c = ops.zeros_like(h)
        token = ops.ones((ops.shape(images)[0],), "int32")  # <START>
        tokens = []
        for _ in range(max_length + 1):  # max_length words, then room for <END>
            step_input = ops.concatenate([embedding(token), features], axis=-1)
            out, (h, c) = cell(step_input, [h, c], training=False)
            token = ops.cast(ops.argmax(head(out), axis=-1), "int32")
            tokens.append(token)
        return ops.stack(tokens, axis=1)

    return engine.function(greedy, [model], jit=jit)


def generate(decoder, images, vocab, batch_size=256):
    """Greedy captions (word lists) for `images`, cut at the first <END>, in batches of one fixed
    size (one compile)."""
    ids = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        padded = np.zeros((batch_size, *images.shape[1:]), images.dtype)
        padded[: len(batch)] = batch
        ids.append(keras.ops.convert_to_numpy(decoder(padded))[: len(batch)])
    return decode_ids(np.concatenate(ids), vocab)


# -- the assignment's NumPy forms --------------------------------------------------------------------


def temporal_softmax_loss(logits, targets, mask):
    """CS231n's `temporal_softmax_loss` in NumPy: masked cross-entropy summed, divided by N."""
    logits = np.asarray(logits, "float64")
    n, t, v = logits.shape
    flat = logits.reshape(n * t, v)
    log_p = flat - flat.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    picked = log_p[np.arange(n * t), np.ravel(targets)]
    return float(-(np.ravel(mask) * picked).sum() / n)


def embedding_backward(upstream, ids, vocab_size):
    """The assignment's word-embedding backward pass: dW = 0; np.add.at(dW, C, dX)."""
    grad = np.zeros((vocab_size, upstream.shape[-1]), upstream.dtype)
    np.add.at(grad, ids, upstream)
    return grad

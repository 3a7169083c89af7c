"""The digit classifier behind the GAN recipes' quality score (recipes/common/quality.py).

Prints its held-out accuracy on mnist5k and the scores of reference image sets against the held-out
digits (1,000 real training digits, uniform noise, blank images), or (`--train`) retrains it and rewrites
recipes/common/assets/digit_classifier.npz.

    python scripts/digit_classifier.py            # accuracy and reference scores
    python scripts/digit_classifier.py --train    # retrain and rewrite the artifact
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recipes.common import quality  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python scripts/digit_classifier.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--train", action="store_true", help="retrain and rewrite the artifact")
    parser.add_argument("--seed", type=int, default=0, help="training seed (with --train)")
    parser.add_argument("--epochs", type=int, default=12, help="training epochs (with --train)")
    args = parser.parse_args(argv)

    import keras

    print(f"backend: {keras.backend.backend()}")
    if args.train:
        model, acc = quality.train_classifier(seed=args.seed, epochs=args.epochs)
        quality.save_classifier(model)
        size = quality.ARTIFACT.stat().st_size
        print(f"held-out accuracy: {acc:.4f}; wrote {quality.ARTIFACT} ({size} bytes)")
        return
    x_train, _, x_test, y_test = quality.digit_split()
    accuracy = quality.accuracy(quality.load_classifier(), x_test, y_test)
    print(f"held-out accuracy: {accuracy:.4f}")
    rng = np.random.default_rng(0)
    for name, images in [
        ("real (training)", x_train[: len(x_test)]),
        ("uniform noise", rng.uniform(size=x_test.shape).astype("float32")),
        ("blank", np.zeros_like(x_test)),
    ]:
        s = quality.score(images)
        print(
            f"{name:16s} fid {s['fid']:9.3f}  confidence {s['confidence']:.3f}  "
            f"class_entropy {s['class_entropy']:.3f}"
        )


if __name__ == "__main__":
    sys.exit(main())

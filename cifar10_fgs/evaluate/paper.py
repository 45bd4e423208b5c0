"""The paper's numbers, each with the section that reports it: the one place they are typed.

Sean Johnson, *Adversarial Machine Learning with Untargeted Fast Gradient Sign Attack on CIFAR10
EfficientNet* (UMass Amherst). Sections: II the attack, IV transfer to the simple deep CNN, V adversarial
training, VI Gaussian filtering. ``comparison`` puts our measurements beside these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperValue:
    key: str  # stable identifier, used by the comparison and its JSON
    value: float
    section: str  # "II", "IV", "V" or "VI"
    quantity: str  # what the number is, in the paper's terms
    unit: str = ""  # "" for accuracies, losses and confidences (fractions)


PAPER_VALUES: tuple[PaperValue, ...] = (
    # II. Untargeted fast gradient sign attack
    PaperValue("attack_step", 0.01, "II", "FGS step (noise weight), fraction of the pixel range"),
    PaperValue("perceptible_step", 0.3, "II", "a step giving perceptible noise (the paper's example)"),
    PaperValue("fooled_percent", 100.0, "II", "images perturbed to be misclassified by the source", "%"),
    PaperValue("fgs_seconds_per_image", 0.089, "II", "average FGS attack time per image", "s"),
    PaperValue("onepixel_seconds_per_image", 12.2, "II", "average one-pixel attack time per image", "s"),
    PaperValue("attack_hours_60k", 1.5, "II", "adversarial counterparts of all 60,000 images (K80)", "h"),
    # IV. Adversarial test on the simple deep CNN
    PaperValue("target_original_accuracy", 0.7545, "IV", "target accuracy, original test set"),
    PaperValue("target_adversarial_accuracy", 0.7288, "IV", "target accuracy, adversarial test set"),
    PaperValue("target_original_loss", 0.7730, "IV", "target loss, original test set"),
    PaperValue("target_adversarial_loss", 0.8538, "IV", "target loss, adversarial test set"),
    PaperValue("target_accuracy_drop", 0.0257, "IV", "accuracy drop from the adversarial images"),
    PaperValue("confidence_fooled", 0.398, "IV", "mean original confidence where the copy fooled the target"),
    PaperValue("confidence_held", 0.761, "IV", "mean original confidence where the copy did not fool it"),
    # V. Adversarial training on the simple deep CNN
    PaperValue("retrained_original_accuracy", 0.7685, "V", "retrained accuracy, original test set"),
    PaperValue("retrained_adversarial_accuracy", 0.7574, "V", "retrained accuracy, adversarial test set"),
    PaperValue("retrained_original_loss", 0.6887, "V", "retrained loss, original test set"),
    PaperValue("retrained_adversarial_loss", 0.7212, "V", "retrained loss, adversarial test set"),
    PaperValue("drop_before_retraining", 0.0257, "V", "accuracy drop, original network"),
    PaperValue("drop_after_retraining", 0.0111, "V", "accuracy drop, retrained network"),
    PaperValue("retraining_minutes", 36.0, "V", "retraining time (EC2 p2.xlarge, K80)", "min"),
    # VI. Gaussian filtering
    PaperValue("gaussian_target_adversarial_no_filter", 0.7288, "VI", "target on the adversarial set, no filter"),
    PaperValue("gaussian_target_adversarial_std_0.5", 0.7492, "VI", "target on the adversarial set, std 0.5"),
    PaperValue("gaussian_gain_std_0.5", 0.0204, "VI", "accuracy recovered by std 0.5 on the adversarial set"),
    PaperValue(
        "gaussian_ms_per_image", 1.0, "VI", 'filter cost per image (paper: "under a thousandth of a second")', "ms"
    ),
)

PAPER = {v.key: v for v in PAPER_VALUES}
PAPER_STD = 0.5  # VI: the std the paper reports its gain at

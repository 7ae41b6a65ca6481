"""A device recipe without counters for 784-input models (the device's recipe before issue 11:
top-k with a decaying p, weighted net vote, margin 256, half input, recalibration every 50
steps): the tests that stream full 784-pixel images to a 784-128-10 model on the twin and QEMU
use it, since the device recipe's int8 counters for such a model would not fit a device."""

from flipnet import recipes

LEAN = recipes.get("paper", epochs=1, batch_size=8, k_frac=0.01, margin=256, vote="weighted",
                   filter="net", calib_target=96, recalibrate_steps=50, input="half")

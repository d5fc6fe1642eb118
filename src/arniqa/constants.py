"""Constants shared across the package (one source of truth)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_SIZE = 224
FEATURE_DIM = 2048  # backbone feature per scale
QUALITY_DIM = 2 * FEATURE_DIM  # full + half scale
EMBEDDING_DIM = 128  # projector output
# The backbones (models.backbones builds them; train.config checks a config against these without torch).
BACKBONES = ("resnet50", "se_resnet50")
SE_STAGES = (1, 2, 3, 4)  # the ResNet stages (layer1..layer4) that can hold SE blocks
SE_INITS = ("identity", "random")  # how SE blocks start on loaded weights (models.backbones.load_resnet50_imagenet)
# The published encoder with the KADID-10k regressor, as the official torch.hub model (names: models.registry).
DEFAULT_REGRESSOR = "kadid10k"
DEFAULT_MODEL = f"arniqa-{DEFAULT_REGRESSOR}"
# Seeds (train.seed, --seed, synthetic.seed): numpy's and torch's seed range; the images of a benchmark are seeded
# seed * 10**8 + ..., which must fit torch's 64 bits.
MAX_SEED = 2**32 - 1
SYNTHETIC_SIZE = (512, 384)  # (W, H) of the synthetic KADID-style images (benchmark, explain fit): KADID-10k's
DEFAULT_PROTOCOL = "crops"  # the views scored (data/views.PROTOCOLS): the official single-image script's
STATE_FILE = "state.pt"  # an `arniqa train` run's resumable state, in its run folder
# Ctrl-C: the exit status shells give a process stopped by SIGINT (128 + 2), and the line that says so (a verb adds
# how it goes on: cli/command.go_on).
EXIT_INTERRUPTED = 130
INTERRUPTED = "interrupted"
# The reader of the command's output went away (`arniqa score | head -1`): 128 + SIGPIPE, as a Unix tool ends.
EXIT_BROKEN_PIPE = 141

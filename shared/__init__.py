"""The shared package: provider library, domain, store and services; one Lambda layer."""

# The layer's folder (beside shared/) of botocore's data trimmed to the functions' AWS services (their models
# without documentation, endpoints, partitions): written by infra.layer_models when the layer is built, the
# only data shared.aws's session reads. Here so the build imports none of the
# layer's packages (they are built for arm64).
AWS_MODELS_FOLDER = "aws-models"

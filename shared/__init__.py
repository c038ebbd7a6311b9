"""The shared package: provider library, domain, store and services; one Lambda layer."""

# The layer's folder (beside shared/) of the AWS service models without their documentation: written by
# infra.layer_models when the layer is built, read by shared.aws. Here so the build imports none of the
# layer's packages (they are built for arm64).
AWS_MODELS_FOLDER = "aws-models"

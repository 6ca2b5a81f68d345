/* The model and the first TERN_FW_IMAGES test images, embedded in flash.
 * Defines from the build (see README.md): TERN_FW_MODEL_FILE, TERN_FW_IMAGES_FILE and
 * TERN_FW_LABELS_FILE (quoted paths) and TERN_FW_IMAGES (count). */
#define IMAGE_BYTES 784

    .section .tern_data, "a"

    /* The runtime needs a 16-byte aligned model; 64 is what the Rust firmware uses. */
    .balign 64
    .global tern_fw_model
    .type tern_fw_model, %object
tern_fw_model:
    .incbin TERN_FW_MODEL_FILE
    .size tern_fw_model, . - tern_fw_model
    .global tern_fw_model_end
tern_fw_model_end:

    /* int8 images, already quantized with the model's input scale and zero point. */
    .balign 16
    .global tern_fw_images
    .type tern_fw_images, %object
tern_fw_images:
    .incbin TERN_FW_IMAGES_FILE, 0, TERN_FW_IMAGES * IMAGE_BYTES
    .size tern_fw_images, . - tern_fw_images

    .global tern_fw_labels
    .type tern_fw_labels, %object
tern_fw_labels:
    .incbin TERN_FW_LABELS_FILE, 0, TERN_FW_IMAGES
    .size tern_fw_labels, . - tern_fw_labels

# The detection proxy of `resdet reproduce --only detection`: the shapes set (shapes_det.py)
# made harder so that a backbone comparison is not saturated: 128 x 128 images, 1-8 instances
# per image (shapes 20-56 px across, so most are COCO "small" or "medium"), occlusion down to
# 30% visible, textured noisy backgrounds. Generated deterministically under data/shapes_hard/.
_base_ = ["./shapes_det.py"]
data_root = "data/shapes_hard"
image_size = 128
generator_kwargs = dict(max_instances=8, min_visible=0.3)
test_pipeline = [dict(type="ResizeShortestEdge", short_edge_length=image_size, max_size=image_size)]
train_pipeline = test_pipeline + [dict(type="DetRandomFlip", prob=0.5)]
train_dataloader = dict(
    num_workers=0,
    dataset=dict(
        data_root=data_root,
        num_images=2000,
        image_size=image_size,
        generator_kwargs=generator_kwargs,
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    num_workers=0,
    dataset=dict(
        data_root=data_root,
        num_images=300,
        image_size=image_size,
        generator_kwargs=generator_kwargs,
        pipeline=test_pipeline,
    ),
)

"""Screen pop: caller lookup, profile with next-best-action hints, masking for agent screens."""

from cti.screenpop.assemble import Pop, build_pop
from cti.screenpop.mask import mask_email, mask_phone, mask_tree

__all__ = ["Pop", "build_pop", "mask_email", "mask_phone", "mask_tree"]

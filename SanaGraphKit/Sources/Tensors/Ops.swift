/// The CPU kernels, named and argument-ordered like `torch.nn.functional`.
///
/// Every kernel takes and returns dense, contiguous fp32 `Tensor`s and returns a new tensor unless its name
/// says `InPlace`. Shape mismatches are programmer errors (model code calls these, not users) and trap with a
/// message naming the kernel and the shapes. Kernels are split across `Ops+*.swift` files by family.
public enum Ops {}

internal import CKernels

/// An activation held channels-last (NHWC: `[batch, height, width, channels]`), fp32 or bf16 bits, between oneDNN
/// convolutions that read and write that layout, so that nothing goes back to NCHW between them (a run of DC-AE
/// ResBlocks in bf16). Made and read by `Ops`; its storage is not shared with a `Tensor`.
public struct ChannelsLastActivation: Sendable {
    public let storage: TensorStorage
    public let batch: Int, channels: Int, height: Int, width: Int
    /// Whether the elements are bf16 bits (two per float of `storage`) rather than fp32.
    public let isBF16: Bool

    init(batch: Int, channels: Int, height: Int, width: Int, bf16: Bool) {
        (self.batch, self.channels, self.height, self.width, isBF16) = (batch, channels, height, width, bf16)
        let count = batch * channels * height * width
        storage = TensorStorage(uninitializedCount: bf16 ? (count + 1) / 2 : count)
    }

    init(like a: ChannelsLastActivation, bf16: Bool) {
        self.init(batch: a.batch, channels: a.channels, height: a.height, width: a.width, bf16: bf16)
    }

    /// The NCHW shape of the same activation.
    public var shape: [Int] { [batch, channels, height, width] }
    var count: Int { batch * channels * height * width }
    var bits: UnsafeMutablePointer<UInt16> { UnsafeMutableRawPointer(storage.pointer).assumingMemoryBound(to: UInt16.self) }
}

extension ConvWeight {
    /// Whether a `batch × height × width` input runs through oneDNN reading bf16 NHWC and writing fp32 NHWC, and
    /// SanaGraph's channels-last kernels are on (`KernelSelection.channelsLast`), so that
    /// `Ops.conv2d(_: ChannelsLastActivation, _:)` applies.
    public func runsChannelsLast(batch: Int, height: Int, width: Int) -> Bool {
        guard mode == .oneDNN, let packed, Kernels.selection.channelsLast else { return false }
        return sg_conv_channels_last(packed, batch, height, width) == 1
    }
}

extension Ops {
    /// Runs `body(image, p0, p1)` over every image's pixels in parallel ranges of about 64 K elements.
    private static func forEachPixelRange(_ a: ChannelsLastActivation, _ body: @Sendable (Int, Int, Int) -> Void) {
        let hw = a.height * a.width
        let chunk = Swift.max(64, (65_536 / Swift.max(1, a.channels)) / 64 * 64)
        let ranges = (hw + chunk - 1) / chunk
        Parallel.forEachRange(a.batch * ranges) { items in
            for item in items {
                let p0 = (item % ranges) * chunk
                body(item / ranges, p0, Swift.min(hw, p0 + chunk))
            }
        }
    }

    /// `x` (NCHW fp32) channels-last in fp32, and its bf16 copy when `withBF16`.
    public static func channelsLast(_ x: Tensor, withBF16: Bool) -> (ChannelsLastActivation, ChannelsLastActivation?) {
        precondition(x.rank == 4, "channelsLast: expected [N, C, H, W], got \(x.shape)")
        let a = ChannelsLastActivation(batch: x.shape[0], channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                                       bf16: false)
        let b = withBF16 ? ChannelsLastActivation(like: a, bf16: true) : nil
        let (c, hw, isa) = (a.channels, a.height * a.width, Kernels.selection.vectorISA.c)
        let px = SendablePointer(x.storage.pointer + x.offset), py = SendablePointer(a.storage.pointer)
        let pb = b.map { SendablePointer($0.bits) }
        forEachPixelRange(a) { image, p0, p1 in
            let at = image * c * hw
            sg_nchw_to_nhwc(px.pointer + at, c, hw, p0, p1, py.pointer + at, pb.map { $0.pointer + at }, isa)
        }
        withExtendedLifetime(x) {}
        return (a, b)
    }

    /// An fp32 channels-last activation back as an NCHW tensor.
    public static func nchw(_ a: ChannelsLastActivation) -> Tensor {
        precondition(!a.isBF16, "nchw: expected an fp32 activation")
        let out = Tensor(uninitialized: a.shape)
        let (c, hw, isa) = (a.channels, a.height * a.width, Kernels.selection.vectorISA.c)
        let src = SendablePointer(a.storage.pointer), dst = SendablePointer(out.storage.pointer)
        forEachPixelRange(a) { image, p0, p1 in
            sg_nhwc_to_nchw(src.pointer + image * hw * c, c, hw, p0, p1, dst.pointer + image * c * hw, isa)
        }
        withExtendedLifetime(a) {}
        return out
    }

    /// A convolution of a bf16 channels-last activation, its output fp32 channels-last
    /// (`w.runsChannelsLast(...)` must hold for the input's size).
    public static func conv2d(_ x: ChannelsLastActivation, _ w: ConvWeight) -> ChannelsLastActivation {
        precondition(x.isBF16 && x.channels == w.inChannels && w.runsChannelsLast(batch: x.batch, height: x.height, width: x.width),
                     "conv2d: this filter does not run channels-last on \(x.shape)")
        let y = ChannelsLastActivation(batch: x.batch, channels: w.outChannels,
                                       height: (x.height + 2 * w.padding.0 - w.kernelHeight) / w.stride.0 + 1,
                                       width: (x.width + 2 * w.padding.1 - w.kernelWidth) / w.stride.1 + 1, bf16: false)
        let status = sg_conv_run_channels_last(w.packed, x.bits, x.batch, x.height, x.width, y.storage.pointer)
        precondition(status == 0, "conv2d: oneDNN failed (status \(status)) on channels-last \(x.shape)")
        withExtendedLifetime(x) {}
        return y
    }

    /// SiLU of an fp32 channels-last activation, rounded to bf16 (the next convolution's input).
    public static func siluBF16(_ x: ChannelsLastActivation) -> ChannelsLastActivation {
        precondition(!x.isBF16, "siluBF16: expected an fp32 activation")
        let y = ChannelsLastActivation(like: x, bf16: true)
        let (count, isa, chunk) = (x.count, Kernels.selection.vectorISA.c, 65_536)
        let src = SendablePointer(x.storage.pointer), dst = SendablePointer(y.bits)
        Parallel.forEachRange((count + chunk - 1) / chunk) { items in
            for item in items {
                let start = item * chunk
                sg_to_bf16(src.pointer + start, dst.pointer + start, Swift.min(chunk, count - start), 1, isa)
            }
        }
        withExtendedLifetime(x) {}
        return y
    }

    /// `residual += channelRMSNorm(x)` in place, both fp32 channels-last of one shape; returns the sum's bf16 copy
    /// when `bf16Copy` (the next convolution's input).
    public static func addChannelRMSNorm(_ x: ChannelsLastActivation, weight: Tensor?, bias: Tensor?, eps: Float,
                                         to residual: ChannelsLastActivation, bf16Copy: Bool) -> ChannelsLastActivation? {
        precondition(!x.isBF16 && !residual.isBF16 && x.shape == residual.shape,
                     "addChannelRMSNorm: x \(x.shape) and residual \(residual.shape) must be fp32 of one shape")
        let copy = bf16Copy ? ChannelsLastActivation(like: x, bf16: true) : nil
        let (c, pixels, isa) = (x.channels, x.batch * x.height * x.width, Kernels.selection.vectorISA.c)
        let src = SendablePointer(x.storage.pointer), res = SendablePointer(residual.storage.pointer)
        let pc = copy.map { SendablePointer($0.bits) }
        let pw = weight.map { SendablePointer($0.storage.pointer + $0.offset) }
        let pb = bias.map { SendablePointer($0.storage.pointer + $0.offset) }
        let chunk = Swift.max(16, 65_536 / Swift.max(1, c))
        Parallel.forEachRange((pixels + chunk - 1) / chunk) { items in
            for item in items {
                let p0 = item * chunk
                sg_nhwc_add_rms_norm(src.pointer, res.pointer, pw?.pointer, pb?.pointer, c, p0, Swift.min(pixels, p0 + chunk),
                                     eps, res.pointer, pc?.pointer, isa)
            }
        }
        withExtendedLifetime((x, residual, weight, bias)) {}
        return copy
    }
}

import SanaGraphKit
import Tensors

extension SocketType {
    /// Text conditioning (embeddings + mask), written to the disk cache.
    public static let conditioning = SocketType("Conditioning", storing: Conditioning.self,
                                                doc: "prompt embeddings [B, L, D] and mask [B, L]")
    public static let textEncoderModel = SocketType("TextEncoderModel", holding: (any TextEncoderModel).self,
                                                    doc: "a loaded text encoder (prompts -> Conditioning)")
    public static let denoiserModel = SocketType("DenoiserModel", holding: (any DenoiserModel).self,
                                                 doc: "a loaded denoiser (latent, timestep, text -> velocity)")
    public static let autoencoderModel = SocketType("AutoencoderModel", holding: (any AutoencoderModel).self,
                                                    doc: "a loaded autoencoder (image <-> latent)")
    public static let upscaleModel = SocketType("UpscaleModel", holding: (any UpscaleModel).self,
                                                doc: "a loaded image upscaling model")
}

/// The socket types of this module; packs that use them list these in `NodePack.socketTypes`.
public enum DiffusionSocketTypes {
    public static let all: [SocketType] = [.conditioning, .textEncoderModel, .denoiserModel, .autoencoderModel,
                                           .upscaleModel]
}

extension Value {
    public static func conditioning(_ c: Conditioning) -> Value { Value(.conditioning, c) }
    public static func textEncoder(_ m: any TextEncoderModel) -> Value { Value(.textEncoderModel, m) }
    public static func denoiser(_ m: any DenoiserModel) -> Value { Value(.denoiserModel, m) }
    public static func autoencoder(_ m: any AutoencoderModel) -> Value { Value(.autoencoderModel, m) }
    public static func upscaler(_ m: any UpscaleModel) -> Value { Value(.upscaleModel, m) }
}

extension NodeInputs {
    public func conditioning(_ name: String) throws -> Conditioning {
        try payload(name, as: Conditioning.self, expected: "Conditioning")
    }

    public func optionalConditioning(_ name: String) throws -> Conditioning? {
        try optionalPayload(name, as: Conditioning.self, expected: "Conditioning")
    }

    public func textEncoder(_ name: String) throws -> any TextEncoderModel {
        try payload(name, as: (any TextEncoderModel).self, expected: "TextEncoderModel")
    }

    public func denoiser(_ name: String) throws -> any DenoiserModel {
        try payload(name, as: (any DenoiserModel).self, expected: "DenoiserModel")
    }

    public func autoencoder(_ name: String) throws -> any AutoencoderModel {
        try payload(name, as: (any AutoencoderModel).self, expected: "AutoencoderModel")
    }

    public func upscaler(_ name: String) throws -> any UpscaleModel {
        try payload(name, as: (any UpscaleModel).self, expected: "UpscaleModel")
    }
}

/// A chip instance: the fixed-pattern deviations of its 512 neuron circuits, drawn once from a seed
/// (same seed, same chip), and the per-circuit trim settings a calibration chooses.
namespace SnnFunc.Backends

open System
open SnnFunc

/// The neuron parameters a circuit's fixed-pattern noise acts on and a calibration trims.
type CircuitParameter =
    | TauMem = 0
    | TauSyn = 1
    | Leak = 2
    | Threshold = 3
    | Reset = 4

/// One chip's circuits as drawn: per parameter (the CircuitParameter's value) and circuit, the
/// deviation at the shared middle trim setting (relative for τm, τs; CADC codes for the voltages)
/// and the slope of its trim DAC; per circuit the relative deviation of the synaptic gain.
type ChipInstance =
    {
        Seed: int64
        Deviation: float[][]
        TrimSlope: float[][]
        GainExcitatory: float[]
        GainInhibitory: float[]
    }

/// What a calibration aims the circuits at: the voltages in CADC codes, the time constants in
/// hardware seconds (calix's units, bss2.md 1.3).
type CalibrationTargets =
    {
        Leak: float
        Threshold: float
        Reset: float
        TauMem: float
        TauSyn: float
    }

/// Trim codes per parameter and circuit (10-bit CapMem values [R] S1, bss2.md 1.1), with the
/// chip and the targets they were found for.
type Trim =
    {
        Codes: int[][]
        /// What was calibrated ("uncalibrated" for the shared middle setting).
        Description: string
        /// The seed of the chip instance the codes were found for: another chip's circuits deviate
        /// differently, so its codes would trim them wrongly (None: the same setting on any chip).
        ChipSeed: int64 option
        /// The targets the codes were found for (None: not calibrated).
        Targets: CalibrationTargets option
    }

/// Chip instances and their trims.
[<RequireQualifiedAccess>]
module Chip =
    let parameters =
        [|
            CircuitParameter.TauMem
            CircuitParameter.TauSyn
            CircuitParameter.Leak
            CircuitParameter.Threshold
            CircuitParameter.Reset
        |]

    let parameterName (k: CircuitParameter) =
        match k with
        | CircuitParameter.TauMem -> "tauMem"
        | CircuitParameter.TauSyn -> "tauSyn"
        | CircuitParameter.Leak -> "leak"
        | CircuitParameter.Threshold -> "threshold"
        | CircuitParameter.Reset -> "reset"
        | _ -> invalidArg "k" $"Chip: unknown parameter %A{k}"

    /// The spread of parameter k in a table of spreads.
    let spreadOf (s: Bss2Figures.Spreads) (k: CircuitParameter) =
        match k with
        | CircuitParameter.TauMem -> s.TauMem
        | CircuitParameter.TauSyn -> s.TauSyn
        | CircuitParameter.Leak -> s.Leak
        | CircuitParameter.Threshold -> s.Threshold
        | CircuitParameter.Reset -> s.Reset
        | _ -> invalidArg "k" $"Chip: unknown parameter %A{k}"

    /// 10-bit trim codes; every circuit starts at the middle one.
    let trimMiddle = 512
    let trimMax = 1023

    /// The change of a parameter per trim code (at slope 1): √12 × its calibrated spread, so that a
    /// calibration which finds the best code leaves a residual spread over one step, whose standard
    /// deviation is the calibrated figure of the reference table (the finite resolution of the
    /// trim is what limits a calibration, in this model).
    let trimStep (k: CircuitParameter) =
        sqrt 12.0 * spreadOf Bss2Figures.calibrated k

    /// The chip of a seed: deviations N(0, uncalibrated spread), trim slopes 1 ± 10 % (within
    /// [0.7, 1.3]), gains N(0, 13 %) (above -0.9), from counter-based keys of the seed.
    let create (seed: int64) : ChipInstance =
        let key = Random.key seed
        let n = Bss2Figures.neuronCircuits

        let normals (i: int) (rows: int) =
            let z =
                (Random.normalAs Float64 (Random.foldIn key i) [| rows; n |]).ToDoubleArray()

            Array.init rows (fun r -> Array.sub z (r * n) n)

        let spreads = parameters |> Array.map (spreadOf Bss2Figures.uncalibrated)
        let z = normals 0 parameters.Length
        let slopes = normals 1 parameters.Length
        let gains = normals 2 2

        let gain (x: float) =
            max -0.9 (x * Bss2Figures.uncalibrated.Gain)

        {
            Seed = seed
            Deviation = Array.map2 (fun s row -> Array.map (fun x -> s * x) row) spreads z
            TrimSlope = slopes |> Array.map (Array.map (fun x -> Math.Clamp(1.0 + 0.1 * x, 0.7, 1.3)))
            GainExcitatory = Array.map gain gains[0]
            GainInhibitory = Array.map gain gains[1]
        }

    /// A chip without fixed-pattern noise (every deviation and gain error zero).
    let ideal: ChipInstance =
        let n = Bss2Figures.neuronCircuits

        {
            Seed = -1L
            Deviation = parameters |> Array.map (fun _ -> Array.zeroCreate n)
            TrimSlope = parameters |> Array.map (fun _ -> Array.create n 1.0)
            GainExcitatory = Array.zeroCreate n
            GainInhibitory = Array.zeroCreate n
        }

    /// Every circuit at the middle trim code (the uncalibrated chip).
    let untrimmed: Trim =
        {
            Codes =
                parameters
                |> Array.map (fun _ -> Array.create Bss2Figures.neuronCircuits trimMiddle)
            Description = "uncalibrated"
            ChipSeed = None
            Targets = None
        }

    /// The deviation of parameter k of a circuit at a trim code.
    let deviationAt (chip: ChipInstance) (k: CircuitParameter) (circuit: int) (code: int) =
        let i = int k

        chip.Deviation[i][circuit]
        + chip.TrimSlope[i][circuit] * trimStep k * float (code - trimMiddle)

    /// The deviation of parameter k of a circuit under a trim.
    let deviation (chip: ChipInstance) (trim: Trim) (k: CircuitParameter) (circuit: int) =
        deviationAt chip k circuit (trim.Codes[int k][circuit])

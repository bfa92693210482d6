/// The chip's matrix (MAC) mode on concrete numbers (bss2.md 3): the settings of a product, where
/// its tiles run (grenade's placement), hxtorch's mock arithmetic bit for bit with optional
/// fixed-pattern noise of the columns, and the hardware time and energy of a pass. The
/// differentiable product and the layers built on it are Bss2.Mac (Mac.fs).
namespace SnnFunc.Backends.Bss2

open System
open SnnFunc
open SnnFunc.RandomBits

/// What a MAC product computes.
type MacMode =
    /// The chip's arithmetic (hxtorch's mock, bss2.md 3.4): rounding, range checks, per-chunk
    /// noise, floor and int8 saturation, and the fixed pattern if one is given.
    | Emulated
    /// The unquantised software network with the same parameters: scale · x @ w in the input's
    /// float dtype with no rounding, range check, noise, fixed pattern, floor or clamp (and the
    /// layers' ideal forms); ordinary tensor operations, differentiable as such.
    | Ideal

/// Fixed-pattern noise of the neuron columns: a property of the chip, the same for every product
/// on it (bss2.md 2.3: the MAC output is linear for about −80..+80 of the int8 range, beyond that
/// the ADC saturates, "earlier for some neurons and later for others").
type MacFixedPattern =
    {
        /// Relative standard deviation of the gain factor g_c ~ N(1, GainSpread) of each of the 512
        /// physical columns (clamped at 0.001); 0 gives g_c = 1 exactly.
        GainSpread: float
        /// The fraction (0..1) of the physical columns that saturate early.
        EarlySaturationFraction: float
        /// Those columns clamp each chunk's result to ±EarlySaturationLevel (1..127) instead of
        /// [−128, 127].
        EarlySaturationLevel: int
        /// The key the pattern is drawn from: the chip's identity (the same key, the same pattern
        /// in every call, unlike the noise's Key).
        ChipKey: Key
    }

/// Settings of MAC products.
type MacConfig =
    {
        /// Output LSB per unit of Σ x·w (hxtorch's MockParameter.gain, default 0.002, bss2.md 3.4);
        /// in (0, 1].
        Gain: float
        /// How often the input vector is sent (each send integrates once more).
        NumSends: int
        /// Standard deviation of the Gaussian noise on each 128-row partial sum, in output LSB
        /// (default 2.0, bss2.md 3.4); 0 turns it off.
        NoiseStd: float
        /// The key of this product's noise (fold in a counter per call for fresh noise).
        Key: Key
        /// The chip's arithmetic (Emulated, the default) or the ideal software network.
        Mode: MacMode
        /// The columns' gain spread and early saturation (None: ideal columns, the bit-exact
        /// arithmetic of hxtorch's mock).
        FixedPattern: MacFixedPattern option
        /// Hardware seconds per sequential run on top of its spike train, for the reset and the CADC
        /// readout (default one CADC read period, 1.7 µs: an assumption, bss2.md gives no figure).
        PassOverhead: float
        /// Sequential execution instances (runs) one product may take; a larger product is an error.
        MaxRuns: int
    }

/// One tile of a product: input rows [fst Rows, snd Rows) times output columns [fst Columns,
/// snd Columns) on a hemisphere's synapse array in a sequential run.
type MacTile =
    {
        /// The tile's number t (output chunks outer, input chunks inner).
        Index: int
        /// The sequential execution instance, t div 2.
        Run: int
        /// The hemisphere, t mod 2.
        Hemisphere: int
        /// The input rows, half open (at most 128).
        Rows: int * int
        /// The output columns, half open (at most 256).
        Columns: int * int
    }

/// The drawn fixed pattern: per physical column (hemisphere · 256 + column) its gain factor and
/// whether it saturates early.
type MacColumnPattern =
    {
        Gains: float32[]
        EarlySaturating: bool[]
    }

/// MAC products on concrete values (the binding `Bss2.MacChip`; Bss2.Mac re-exports what users need).
[<RequireQualifiedAccess>]
module MacChip =
    /// Synapse rows per input chunk: a signed weight takes an excitatory and an inhibitory row of
    /// the 256 (bss2.md 3.4, hardware_matrix_height).
    [<Literal>]
    let ChunkRows = 128

    /// Neuron columns per hemisphere: the output tiling of the hardware (bss2.md 3.2).
    [<Literal>]
    let ChunkColumns = 256

    /// Neuron columns of the chip: two hemispheres of 256 (bss2.md 1.1).
    [<Literal>]
    let PhysicalColumns = 512

    /// FPGA cycles between two input events of a MAC pass (hxtorch's wait_between_events, 5 = 40 ns,
    /// bss2.md 3.4).
    [<Literal>]
    let WaitBetweenEvents = 5

    /// The smallest gain factor a column's draw is clamped to.
    [<Literal>]
    let MinColumnGain = 1e-3

    let internal failIn (op: string) (message: string) : 'a =
        invalidArg "x" $"Bss2.Mac.%s{op}: %s{message}"

    let private checkPattern (op: string) (p: MacFixedPattern) =
        if not (p.GainSpread >= 0.0) || Double.IsInfinity p.GainSpread then
            failIn op $"FixedPattern.GainSpread must be >= 0 and finite, got %g{p.GainSpread}"

        if not (p.EarlySaturationFraction >= 0.0 && p.EarlySaturationFraction <= 1.0) then
            failIn op $"FixedPattern.EarlySaturationFraction must lie in 0..1, got %g{p.EarlySaturationFraction}"

        if p.EarlySaturationLevel < 1 || p.EarlySaturationLevel > 127 then
            failIn op $"FixedPattern.EarlySaturationLevel must lie in 1..127, got %d{p.EarlySaturationLevel}"

    /// The configuration's ranges, with errors naming the operation and the field.
    let internal check (op: string) (c: MacConfig) =
        if not (c.Gain > 0.0 && c.Gain <= 1.0) then
            failIn op $"the gain must lie in (0, 1], got %g{c.Gain}"

        if c.NumSends < 1 then
            failIn op $"NumSends must be at least 1, got %d{c.NumSends}"

        if not (c.NoiseStd >= 0.0) || Double.IsInfinity c.NoiseStd then
            failIn op $"NoiseStd must be >= 0 and finite, got %g{c.NoiseStd}"

        if not (c.PassOverhead >= 0.0) || Double.IsInfinity c.PassOverhead then
            failIn op $"PassOverhead must be >= 0 and finite (seconds), got %g{c.PassOverhead}"

        if c.MaxRuns < 1 then
            failIn op $"MaxRuns must be at least 1, got %d{c.MaxRuns}"

        c.FixedPattern |> Option.iter (checkPattern op)

    /// The float32 factor of a partial sum: float32(float64(num_sends) · gain) (torch's scalar).
    let scaleOf (c: MacConfig) = float32 (float c.NumSends * c.Gain)

    let private chunksOf (size: int) (n: int) = (n + size - 1) / size

    let private checkSize (op: string) (k: int) (n: int) =
        if k < 1 || n < 1 then
            failIn op $"a product needs K >= 1 inputs and N >= 1 outputs, got K = %d{k}, N = %d{n}"

    /// The tiles of a product with K inputs and N outputs (256-column output chunks outer, 128-row
    /// input chunks inner): tile t runs on hemisphere t mod 2 in sequential run t div 2 (grenade's
    /// placement, bss2.md 3.4). Returns (tiles, sequential runs).
    let tiling (k: int) (n: int) =
        checkSize "tiling" k n
        let tiles = chunksOf ChunkColumns n * chunksOf ChunkRows k
        tiles, (tiles + 1) / 2

    /// The tiles of a product with K inputs and N outputs in grenade's placement (see tiling), each
    /// with its run, hemisphere, input rows and output columns.
    let placement (k: int) (n: int) : MacTile[] =
        checkSize "placement" k n
        let inputChunks = chunksOf ChunkRows k

        [|
            for oc in 0 .. chunksOf ChunkColumns n - 1 do
                for ic in 0 .. inputChunks - 1 do
                    let t = oc * inputChunks + ic

                    {
                        Index = t
                        Run = t / 2
                        Hemisphere = t % 2
                        Rows = ic * ChunkRows, min k ((ic + 1) * ChunkRows)
                        Columns = oc * ChunkColumns, min n ((oc + 1) * ChunkColumns)
                    }
        |]

    /// K >= 1, N >= 1 and no more sequential runs than c.MaxRuns.
    let internal checkPlacement (op: string) (c: MacConfig) (k: int) (n: int) =
        checkSize op k n
        let tiles, runs = tiling k n

        if runs > c.MaxRuns then
            failIn
                op
                $"a product of K = %d{k} inputs and N = %d{n} outputs needs %d{runs} sequential runs (%d{tiles} tiles of %d{ChunkRows} rows x %d{ChunkColumns} columns, two per run), more than MaxRuns = %d{c.MaxRuns}"

    /// The chip's fixed pattern drawn from p.ChipKey: gain factors float32(max(0.001, 1 +
    /// GainSpread · z_c)), z_c ~ N(0, 1) from foldIn ChipKey 0, and the round(fraction · 512)
    /// columns with the smallest u_c ~ U[0, 1) from foldIn ChipKey 1 saturating early.
    let columnPattern (p: MacFixedPattern) : MacColumnPattern =
        checkPattern "columnPattern" p

        let z =
            (SnnFunc.Random.normalAs Float64 (SnnFunc.Random.foldIn p.ChipKey 0) [| PhysicalColumns |]).ToDoubleArray()

        let u =
            (SnnFunc.Random.uniformAs Float64 (SnnFunc.Random.foldIn p.ChipKey 1) [| PhysicalColumns |]).ToDoubleArray()

        let early = Array.zeroCreate<bool> PhysicalColumns

        let count =
            int (Math.Round(p.EarlySaturationFraction * float PhysicalColumns, MidpointRounding.AwayFromZero))

        Array.init PhysicalColumns id
        |> Array.sortBy (fun i -> u[i], i)
        |> Array.truncate count
        |> Array.iter (fun i -> early[i] <- true)

        {
            Gains = z |> Array.map (fun z -> float32 (max MinColumnGain (1.0 + p.GainSpread * z)))
            EarlySaturating = early
        }

    /// The physical column (hemisphere · 256 + column) of output j in input chunk `chunk` of a
    /// product with `inputChunks` input chunks: tile t = (j div 256) · inputChunks + chunk runs on
    /// hemisphere t mod 2.
    let physicalColumn (inputChunks: int) (chunk: int) (j: int) =
        let t = (j / ChunkColumns) * inputChunks + chunk
        (t % 2) * ChunkColumns + j % ChunkColumns

    /// torch.round: half to even.
    let internal roundHalfEven (v: float) = Math.Round(v, MidpointRounding.ToEven)

    /// Round half to even, then the range check of the rounded values.
    let private quantise (what: string) (lo: int) (hi: int) (cols: int) (values: float[]) =
        values
        |> Array.mapi (fun i v ->
            let q = roundHalfEven v

            if not (q >= float lo && q <= float hi) then
                failIn
                    "matmul"
                    $"%s{what} [%d{i / cols}, %d{i % cols}] = %g{v} rounds to %g{q}, outside %d{lo}..%d{hi} (layers clamp weights; scale inputs to 0..31)"

            int q)

    /// The chip's product of concrete x [B; K] and w [K; N] (any float dtype) as its int8 outputs
    /// [B; N] in Float32, whatever c.Mode (Bss2.Mac.matmul chooses): per chunk of 128 rows the exact
    /// integer partial sum S, v = float32(S) · scale (· g_c, the column's gain, with a fixed
    /// pattern), plus fresh N(0, σ) noise over [B; N] (float32), floor, clamp to [−128, 127] (±level
    /// on an early-saturating column); the chunks summed exactly and clamped once to [−128, 127].
    /// The column c of output j in a chunk is that of its tile (see physicalColumn).
    let forward (c: MacConfig) (x: Tensor) (w: Tensor) : Tensor =
        check "matmul" c

        if x.Rank <> 2 || w.Rank <> 2 then
            failIn "matmul" $"x must be [batch; K] and w [K; N], got %s{Shape.format x.Shape} and %s{Shape.format w.Shape}"

        let batch, k, n = x.Shape[0], x.Shape[1], w.Shape[1]

        if w.Shape[0] <> k then
            failIn "matmul" $"x %s{Shape.format x.Shape} has %d{k} inputs, w %s{Shape.format w.Shape} has %d{w.Shape[0]} rows"

        checkPlacement "matmul" c k n
        let xq = quantise "input" 0 31 k (x.ToDoubleArray())
        let wq = quantise "weight" -63 63 n (w.ToDoubleArray())
        let scale = scaleOf c
        let total = Array.zeroCreate<int> (batch * n)
        let partial = Array.zeroCreate<int> n
        let chunks = chunksOf ChunkRows k
        let pattern = c.FixedPattern |> Option.map columnPattern
        // Per output column of the current chunk: its gain factor and its clamp.
        let gains = Array.create n 1.0f
        let lows = Array.create n -128.0
        let highs = Array.create n 127.0

        for chunk in 0 .. chunks - 1 do
            let k0, k1 = chunk * ChunkRows, min k ((chunk + 1) * ChunkRows)

            match c.FixedPattern, pattern with
            | Some p, Some columns ->
                let level = float p.EarlySaturationLevel

                for j in 0 .. n - 1 do
                    let pc = physicalColumn chunks chunk j
                    gains[j] <- columns.Gains[pc]
                    lows[j] <- if columns.EarlySaturating[pc] then -level else -128.0
                    highs[j] <- if columns.EarlySaturating[pc] then level else 127.0
            | _ -> ()

            let noise =
                if c.NoiseStd = 0.0 then
                    null
                else
                    let std = float32 c.NoiseStd

                    (SnnFunc.Random.normalAs Float32 (SnnFunc.Random.foldIn c.Key chunk) [| batch; n |]).ToArray()
                    |> Array.map (fun z -> z * std)

            for b in 0 .. batch - 1 do
                Array.Clear partial

                for r in k0 .. k1 - 1 do
                    let xv = xq[b * k + r]

                    if xv <> 0 then
                        let o = r * n

                        for j in 0 .. n - 1 do
                            partial[j] <- partial[j] + xv * wq[o + j]

                for j in 0 .. n - 1 do
                    // |S| <= 128 · 31 · 63 < 2^24: float32(S) is exact; one rounding in the product.
                    let v = float32 partial[j] * scale
                    let v = if pattern.IsNone then v else v * gains[j]
                    let v = if isNull noise then v else v + noise[b * n + j]
                    let q = Math.Clamp(floor (float v), lows[j], highs[j])
                    total[b * n + j] <- total[b * n + j] + int q

        let out = total |> Array.map (fun t -> float32 (Math.Clamp(t, -128, 127)))
        Tensor.FromArray(out, batch, n)

    /// The hardware seconds of the input spike trains of one product per row of x [B; K] (values
    /// 0..31) with N outputs: per sequential run, the non-zero inputs of the fuller of its two
    /// hemispheres' tiles × num_sends × 40 ns (bss2.md 3.1). Reset and readout: see passSeconds.
    let spikeTrainSeconds (c: MacConfig) (x: Tensor) (n: int) : float[] =
        check "spikeTrainSeconds" c

        if x.Rank <> 2 then
            failIn "spikeTrainSeconds" $"x must be [batch; K], got %s{Shape.format x.Shape}"

        let batch, k = x.Shape[0], x.Shape[1]
        checkPlacement "spikeTrainSeconds" c k n
        let values = x.ToDoubleArray()
        let inputChunks = chunksOf ChunkRows k
        let tiles, runs = tiling k n

        let perEvent =
            float WaitBetweenEvents
            * SnnFunc.Backends.Bss2Figures.timestampClock
            * float c.NumSends

        Array.init batch (fun b ->
            let nonZero chunk =
                let k0, k1 = chunk * ChunkRows, min k ((chunk + 1) * ChunkRows)

                Seq.init (k1 - k0) (fun r -> values[b * k + k0 + r])
                |> Seq.filter (fun v -> roundHalfEven v <> 0.0)
                |> Seq.length

            // Tile t reads input chunk t mod inputChunks (output chunk outer, input chunk inner).
            let events t = nonZero (t % inputChunks)

            Seq.init runs (fun run -> max (events (2 * run)) (if 2 * run + 1 < tiles then events (2 * run + 1) else 0))
            |> Seq.sumBy (fun e -> float e * perEvent))

    /// The emulated hardware seconds of one product per row of x [B; K] with N outputs: per
    /// sequential run its spike train (spikeTrainSeconds) plus c.PassOverhead for the reset and the
    /// CADC readout.
    let passSeconds (c: MacConfig) (x: Tensor) (n: int) : float[] =
        let trains = spikeTrainSeconds c x n
        let _, runs = tiling x.Shape[1] n
        trains |> Array.map (fun s -> s + float runs * c.PassOverhead)

    /// The emulated ASIC energy of one product per row of x: passSeconds × Bss2Figures.macPower
    /// (0.696 W, from the BSS-2 mobile ECG figures, bss2.md 3.3).
    let passJoules (c: MacConfig) (x: Tensor) (n: int) : float[] =
        passSeconds c x n
        |> Array.map (fun s -> s * SnnFunc.Backends.Bss2Figures.macPower)

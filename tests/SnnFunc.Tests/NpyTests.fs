module SnnFunc.Tests.NpyTests

open System
open System.IO
open System.IO.Compression
open System.Text
open Xunit
open FsCheck
open FsCheck.FSharp
open SnnFunc

let fixture (name: string) =
    Path.Combine(AppContext.BaseDirectory, "fixtures", name)

let private f32Ref = Array.init 6 (fun k -> float32 k / 7.0f)
let private f64Ref = Array.init 5 (fun k -> float k / 7.0 - 0.25)

let private asF32 (s: Storage) =
    match s with
    | Storage.F32 a -> a
    | _ -> failwith "expected Float32 storage"

let private asF64 (s: Storage) =
    match s with
    | Storage.F64 a -> a
    | _ -> failwith "expected Float64 storage"

let private bitsOf32 (a: float32[]) =
    a |> Array.map BitConverter.SingleToInt32Bits

let private bitsOf64 (a: float[]) =
    a |> Array.map BitConverter.DoubleToInt64Bits

let private readBytes (bytes: byte[]) =
    NpyFormat.read (new MemoryStream(bytes))

let private toBytes (shape: int[]) (storage: Storage) =
    use ms = new MemoryStream()
    NpyFormat.write ms shape storage
    ms.ToArray()

/// A read-only stream that cannot seek (like a zip member), to exercise the streaming paths.
type private NonSeekable(inner: Stream) =
    inherit Stream()
    override _.CanRead = true
    override _.CanSeek = false
    override _.CanWrite = false
    override _.Length = raise (NotSupportedException())

    override _.Position
        with get () = raise (NotSupportedException())
        and set _ = raise (NotSupportedException())

    override _.Flush() = ()
    override _.Read(buffer: byte[], offset: int, count: int) = inner.Read(buffer, offset, min count 7)
    override _.Seek(_, _) = raise (NotSupportedException())
    override _.SetLength _ = raise (NotSupportedException())
    override _.Write(_, _, _) = raise (NotSupportedException())

let private tempDir () =
    let d =
        Path.Combine(Path.GetTempPath(), "snnfunc-npy-" + Guid.NewGuid().ToString "N")

    Directory.CreateDirectory d |> ignore
    d

/// Replaces the header text of a .npy image (version 1.0) keeping the length field consistent.
let private withHeader (header: string) (data: byte[]) =
    let body = Encoding.ASCII.GetBytes(header + "\n")
    let out = ResizeArray<byte>()
    out.AddRange [| 0x93uy; byte 'N'; byte 'U'; byte 'M'; byte 'P'; byte 'Y'; 1uy; 0uy |]
    out.AddRange(BitConverter.GetBytes(uint16 body.Length))
    out.AddRange body
    out.AddRange data
    out.ToArray()

// ---------------------------------------------------------------------------------------------
// Reading NumPy's files
// ---------------------------------------------------------------------------------------------

[<Fact>]
let ``reads float32 and float64 arrays written by np.save`` () =
    let shape, s = NpyFormat.readFile (fixture "f32_2x3.npy")
    Assert.Equal<int[]>([| 2; 3 |], shape)
    Assert.Equal<int[]>(bitsOf32 f32Ref, bitsOf32 (asF32 s))
    let shape, s = NpyFormat.readFile (fixture "f64_5.npy")
    Assert.Equal<int[]>([| 5 |], shape)
    Assert.Equal<int64[]>(bitsOf64 f64Ref, bitsOf64 (asF64 s))

[<Fact>]
let ``reads scalars, zero-size arrays and negative zero`` () =
    let shape, s = NpyFormat.readFile (fixture "f64_scalar.npy")
    Assert.Empty shape
    Assert.Equal<float[]>([| 3.5 |], asF64 s)
    let shape, s = NpyFormat.readFile (fixture "f32_empty_0x3.npy")
    Assert.Equal<int[]>([| 0; 3 |], shape)
    Assert.Empty(asF32 s)
    let shape, s = NpyFormat.readFile (fixture "f64_1x1x1x1.npy")
    Assert.Equal<int[]>([| 1; 1; 1; 1 |], shape)
    Assert.Equal<int64[]>([| BitConverter.DoubleToInt64Bits -0.0 |], bitsOf64 (asF64 s))

[<Fact>]
let ``reads special float values bit for bit`` () =
    let _, s = NpyFormat.readFile (fixture "f32_special.npy")
    let a = asF32 s
    Assert.Equal(Single.PositiveInfinity, a[0])
    Assert.Equal(Single.NegativeInfinity, a[1])
    Assert.True(Single.IsNaN a[2])
    Assert.Equal(BitConverter.SingleToInt32Bits -0.0f, BitConverter.SingleToInt32Bits a[3])
    Assert.Equal(Single.Epsilon, a[4])
    Assert.Equal(Single.MaxValue, a[5])

[<Fact>]
let ``reads big-endian floats`` () =
    let shape, s = NpyFormat.readFile (fixture "f32_be_2x3.npy")
    Assert.Equal<int[]>([| 2; 3 |], shape)
    Assert.Equal<int[]>(bitsOf32 f32Ref, bitsOf32 (asF32 s))
    let _, s = NpyFormat.readFile (fixture "f64_be_5.npy")
    Assert.Equal<int64[]>(bitsOf64 f64Ref, bitsOf64 (asF64 s))

[<Fact>]
let ``reads float16 exactly as Float32`` () =
    let shape, s = NpyFormat.readFile (fixture "f16_6.npy")
    Assert.Equal<int[]>([| 6 |], shape)
    // 1/3 in float16 is 0x3555 = 1365/4096.
    let expected =
        [|
            0.5f
            -2.0f
            65504.0f
            float32 (2.0 ** -24.0)
            Single.PositiveInfinity
            1365.0f / 4096.0f
        |]

    Assert.Equal<float32[]>(expected, asF32 s)

[<Fact>]
let ``reads Fortran-order arrays into row-major order`` () =
    let shape, s = NpyFormat.readFile (fixture "f64_fortran_2x3x4.npy")
    Assert.Equal<int[]>([| 2; 3; 4 |], shape)
    Assert.Equal<float[]>(Array.init 24 float, asF64 s)
    let shape, s = NpyFormat.readFile (fixture "f32_fortran_3x2.npy")
    Assert.Equal<int[]>([| 3; 2 |], shape)
    // The transpose of the 2x3 reference: element (i, j) is reference (j, i).
    let expected = Array.init 6 (fun k -> f32Ref[(k % 2) * 3 + k / 2])
    Assert.Equal<float32[]>(expected, asF32 s)

[<Fact>]
let ``reads format versions 2.0 and 3.0`` () =
    for v in [ 2; 3 ] do
        let shape, s = NpyFormat.readFile (fixture $"f32_v%d{v}_2x3.npy")
        Assert.Equal<int[]>([| 2; 3 |], shape)
        Assert.Equal<float32[]>(f32Ref, asF32 s)

let intCases: obj[] seq =
    let values =
        dict
            [
                "b1", [| 1.0; 0.0; 1.0; 1.0 |]
                "u1", [| 0.0; 1.0; 200.0; 255.0 |]
                "i1", [| -128.0; -1.0; 0.0; 127.0 |]
                "i2", [| -32768.0; -1.0; 0.0; 32767.0 |]
                "u2", [| 0.0; 1.0; 40000.0; 65535.0 |]
                "i4", [| -2147483648.0; -1.0; 0.0; 2147483647.0 |]
                "u4", [| 0.0; 1.0; 3e9; 4294967295.0 |]
                "i8", [| -9007199254740992.0; -1.0; 0.0; 9007199254740992.0 |]
                "u8", [| 0.0; 1.0; 1099511627776.0; 9007199254740992.0 |]
            ]

    seq {
        for KeyValue(code, v) in values do
            let tags =
                if code = "b1" || code.EndsWith "1" then
                    [ "na" ]
                else
                    [ "le"; "be" ]

            for tag in tags do
                yield [| box $"dtypes/%s{code}_%s{tag}.npy"; box v |]
    }

[<Theory>]
[<MemberData(nameof intCases)>]
let ``reads bool as Float64 and integer dtypes exactly as Int32, or names the value that does not fit`` (file: string, expected: float[]) =
    let fits =
        expected |> Array.forall (fun v -> v >= -2147483648.0 && v <= 2147483647.0)

    if file.Contains "b1" then
        let shape, s = NpyFormat.readFile (fixture file)
        Assert.Equal<int[]>([| 4 |], shape)
        Assert.Equal<float[]>(expected, asF64 s)
    elif fits then
        let shape, s = NpyFormat.readFile (fixture file)
        Assert.Equal<int[]>([| 4 |], shape)

        match s with
        | Storage.I32 a -> Assert.Equal<int[]>(Array.map int expected, a)
        | _ -> Assert.Fail $"%s{file}: expected int32 storage, got %s{s.DType.Name}"
    else
        let e =
            Assert.Throws<InvalidDataException>(fun () -> NpyFormat.readFile (fixture file) |> ignore)

        let i = expected |> Array.findIndex (fun v -> v < -2147483648.0 || v > 2147483647.0)
        Assert.Contains("does not fit int32", e.Message)
        Assert.Contains($"%.0f{expected[i]} at flat index %d{i}", e.Message)
        Assert.Contains(file, e.Message)

[<Fact>]
let ``integers beyond int32 raise instead of wrapping`` () =
    for file in [ "i8_too_big.npy"; "u8_too_big.npy" ] do
        let e =
            Assert.Throws<InvalidDataException>(fun () -> NpyFormat.readFile (fixture file) |> ignore)

        Assert.Contains("does not fit int32", e.Message)
        Assert.Contains(file, e.Message)

[<Fact>]
let ``unsupported dtypes are named`` () =
    for file, name in
        [
            "unsupported_c16.npy", "complex128"
            "unsupported_U5.npy", "<U5"
            "unsupported_object.npy", "object"
        ] do
        let e =
            Assert.Throws<InvalidDataException>(fun () -> NpyFormat.readFile (fixture file) |> ignore)

        Assert.Contains(name, e.Message)
        Assert.Contains(file, e.Message)

// ---------------------------------------------------------------------------------------------
// Writing exactly as NumPy does
// ---------------------------------------------------------------------------------------------

[<Theory>]
[<InlineData("f32_2x3.npy")>]
[<InlineData("f64_5.npy")>]
[<InlineData("f64_scalar.npy")>]
[<InlineData("f32_empty_0x3.npy")>]
[<InlineData("f64_1x1x1x1.npy")>]
[<InlineData("f32_special.npy")>]
let ``writes byte-identical files to np.save`` (file: string) =
    let expected = File.ReadAllBytes(fixture file)
    let shape, s = readBytes expected
    Assert.Equal<byte[]>(expected, toBytes shape s)

[<Fact>]
let ``data starts on a 64-byte boundary`` () =
    for shape in [ [||]; [| 7 |]; [| 123456789; 0 |]; Array.create 20 1; [| 3; 1; 4; 1; 5 |] ] do
        let n = shape |> Array.fold (*) 1
        let bytes = toBytes shape (Storage.F64(Array.zeroCreate n))
        Assert.Equal(0, (bytes.Length - 8 * n) % 64)
        Assert.Equal(byte '\n', bytes[bytes.Length - 8 * n - 1])

[<Fact>]
let ``a header too long for version 1.0 is written as version 2.0`` () =
    let shape = Array.create 30000 1
    let bytes = toBytes shape (Storage.F32 [| 2.5f |])
    Assert.Equal(2uy, bytes[6])
    Assert.Equal(0, (bytes.Length - 4) % 64)
    let shape', s = readBytes bytes
    Assert.Equal<int[]>(shape, shape')
    Assert.Equal<float32[]>([| 2.5f |], asF32 s)

let private genShape =
    gen {
        let! rank = Gen.choose (0, 4)
        return! Gen.arrayOfLength rank (Gen.choose (0, 4))
    }

[<Fact>]
let ``round trip preserves shape and every bit (property)`` () =
    let prop =
        Prop.forAll (Arb.fromGen (Gen.zip genShape (Gen.elements [ Float32; Float64; Int32 ]))) (fun (shape, dtype) ->
            let n = shape |> Array.fold (*) 1
            let rnd = System.Random(n * 31 + shape.Length)

            let storage =
                match dtype with
                | Float32 -> Storage.F32(Array.init n (fun _ -> BitConverter.Int32BitsToSingle(rnd.Next())))
                | Float64 -> Storage.F64(Array.init n (fun _ -> BitConverter.Int64BitsToDouble(rnd.NextInt64())))
                | Int32 -> Storage.I32(Array.init n (fun _ -> rnd.Next(Int32.MinValue, Int32.MaxValue)))

            let shape', storage' = readBytes (toBytes shape storage)

            let same =
                match storage, storage' with
                | Storage.F32 a, Storage.F32 b -> bitsOf32 a = bitsOf32 b
                | Storage.F64 a, Storage.F64 b -> bitsOf64 a = bitsOf64 b
                | Storage.I32 a, Storage.I32 b -> a = b
                | _ -> false

            shape = shape' && same)

    Check.QuickThrowOnFailure prop

[<Fact>]
let ``reads through a non-seekable stream`` () =
    let bytes = File.ReadAllBytes(fixture "f64_fortran_2x3x4.npy")
    let shape, s = NpyFormat.read (new NonSeekable(new MemoryStream(bytes)))
    Assert.Equal<int[]>([| 2; 3; 4 |], shape)
    Assert.Equal<float[]>(Array.init 24 float, asF64 s)

[<Fact>]
let ``write checks the shape against the storage`` () =
    use ms = new MemoryStream()

    let e =
        Assert.Throws<ArgumentException>(fun () -> NpyFormat.write ms [| 2; 2 |] (Storage.F32 [| 1.0f |]))

    Assert.Contains("4 elements", e.Message)

    Assert.Throws<ArgumentException>(fun () -> NpyFormat.write ms [| -1 |] (Storage.F32 [||]))
    |> ignore

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

[<Fact>]
let ``truncated data reports expected and found byte counts`` () =
    let full = toBytes [| 32; 32 |] (Storage.F32(Array.zeroCreate 1024))
    let headerLen = full.Length - 4096
    let cut = full[.. headerLen + 99]
    let expected = "expected 4096 bytes of data for shape [32; 32] float32, found 100"
    let e = Assert.Throws<InvalidDataException>(fun () -> readBytes cut |> ignore)
    Assert.Contains(expected, e.Message)

    let e =
        Assert.Throws<InvalidDataException>(fun () -> NpyFormat.read (new NonSeekable(new MemoryStream(cut))) |> ignore)

    Assert.Contains(expected, e.Message)

[<Fact>]
let ``errors name the file`` () =
    let dir = tempDir ()

    try
        let path = Path.Combine(dir, "broken.npy")
        let full = File.ReadAllBytes(fixture "f64_5.npy")
        File.WriteAllBytes(path, full[.. full.Length - 9])

        let e =
            Assert.Throws<InvalidDataException>(fun () -> NpyFormat.readFile path |> ignore)

        Assert.Contains(path, e.Message)
        Assert.Contains("expected 40 bytes of data for shape [5] float64, found 32", e.Message)
        File.WriteAllText(path, "hello, not numpy")

        let e =
            Assert.Throws<InvalidDataException>(fun () -> NpyFormat.readFile path |> ignore)

        Assert.Contains(path, e.Message)
        Assert.Contains("magic", e.Message)
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``bad magic, truncated header and unknown versions are rejected`` () =
    let e =
        Assert.Throws<InvalidDataException>(fun () -> readBytes (Encoding.ASCII.GetBytes "PK\003\004 a zip") |> ignore)

    Assert.Contains("magic", e.Message)

    Assert.Throws<InvalidDataException>(fun () -> readBytes [||] |> ignore)
    |> ignore

    let full = File.ReadAllBytes(fixture "f32_2x3.npy")

    for cut in [ 7; 9; 20; 127 ] do
        let e =
            Assert.Throws<InvalidDataException>(fun () -> readBytes full[.. cut - 1] |> ignore)

        Assert.Contains("truncated .npy header", e.Message)

    let v4 = Array.copy full
    v4[6] <- 4uy
    let e = Assert.Throws<InvalidDataException>(fun () -> readBytes v4 |> ignore)
    Assert.Contains("version 4.0", e.Message)

[<Theory>]
[<InlineData("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }")>]
[<InlineData("{'descr': '<f4', 'fortran_order': False, }")>]
[<InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': 2, }")>]
[<InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }")>]
[<InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ")>]
[<InlineData("{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }")>]
[<InlineData("['descr', '<f4']")>]
[<InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': ('a',), }")>]
let ``malformed headers are rejected`` (header: string) =
    let bytes = withHeader header (Array.zeroCreate 8)
    let e = Assert.Throws<InvalidDataException>(fun () -> readBytes bytes |> ignore)
    Assert.True(e.Message.Contains "malformed" || e.Message.Contains "invalid dimension", e.Message)

[<Fact>]
let ``accepts header spellings from other writers`` () =
    // Python 2 long integers, double quotes, no trailing comma, keys in another order.
    let data = Array.concat [ BitConverter.GetBytes 1.5f; BitConverter.GetBytes -2.0f ]

    let bytes =
        withHeader "{\"shape\": (2L,), 'fortran_order': False, \"descr\": \"<f4\"}" data

    let shape, s = readBytes bytes
    Assert.Equal<int[]>([| 2 |], shape)
    Assert.Equal<float32[]>([| 1.5f; -2.0f |], asF32 s)
    // A scalar header with an empty tuple.
    let shape, s =
        readBytes (withHeader "{'descr': '<f8', 'fortran_order': True, 'shape': ()}" (BitConverter.GetBytes 4.0))

    Assert.Empty shape
    Assert.Equal<float[]>([| 4.0 |], asF64 s)

[<Fact>]
let ``structured dtypes are rejected`` () =
    let bytes =
        withHeader "{'descr': [('x', '<f4'), ('y', '<i4')], 'fortran_order': False, 'shape': (1,), }" (Array.zeroCreate 8)

    let e = Assert.Throws<InvalidDataException>(fun () -> readBytes bytes |> ignore)
    Assert.Contains("structured", e.Message)

// ---------------------------------------------------------------------------------------------
// Atomic files
// ---------------------------------------------------------------------------------------------

[<Fact>]
let ``writeFile replaces the file and leaves no temporary behind`` () =
    let dir = tempDir ()

    try
        let path = Path.Combine(dir, "a.npy")
        NpyFormat.writeFile path [| 2 |] (Storage.F32 [| 1.0f; 2.0f |])
        NpyFormat.writeFile path [| 3 |] (Storage.F64 [| 1.0; 2.0; 3.0 |])
        let shape, s = NpyFormat.readFile path
        Assert.Equal<int[]>([| 3 |], shape)
        Assert.Equal<float[]>([| 1.0; 2.0; 3.0 |], asF64 s)
        Assert.Equal<string[]>([| path |], Directory.GetFiles dir)
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``a failed write keeps the previous file and cleans up`` () =
    let dir = tempDir ()

    try
        let path = Path.Combine(dir, "a.npz")
        NpyFormat.writeNpzFile path [ "x", [| 1 |], Storage.F32 [| 5.0f |] ]
        let before = File.ReadAllBytes path
        // Invalid input: rejected before anything is written.
        Assert.Throws<ArgumentException>(fun () -> NpyFormat.writeNpzFile path [ "x", [| 2 |], Storage.F32 [| 5.0f |] ])
        |> ignore

        Assert.Equal<byte[]>(before, File.ReadAllBytes path)
        // A failure at the final move (the target is a folder): the temporary file is removed.
        let sub = Path.Combine(dir, "sub.npy")
        Directory.CreateDirectory sub |> ignore

        Assert.ThrowsAny<Exception>(fun () -> NpyFormat.writeFile sub [| 1 |] (Storage.F32 [| 1.0f |]))
        |> ignore

        Assert.Equal<string[]>([| path |], Directory.GetFiles dir)
    finally
        Directory.Delete(dir, true)

// ---------------------------------------------------------------------------------------------
// .npz
// ---------------------------------------------------------------------------------------------

[<Theory>]
[<InlineData("plain.npz")>]
[<InlineData("compressed.npz")>]
let ``reads np.savez and np.savez_compressed archives`` (file: string) =
    let arrays = NpyFormat.readNpzFile (fixture file)
    Assert.Equal<string list>([ "weights"; "bias"; "count"; "arr_0" ], List.map fst arrays)

    let get name =
        arrays |> List.find (fun (n, _) -> n = name) |> snd

    let shape, s = get "weights"
    Assert.Equal<int[]>([| 2; 3 |], shape)
    Assert.Equal<float32[]>(f32Ref, asF32 s)
    let _, s = get "bias"
    Assert.Equal<float[]>(f64Ref, asF64 s)
    let shape, s = get "count"
    Assert.Empty shape
    Assert.Equal(Storage.I32 [| 7 |], s)
    Assert.Equal<float32[]>(f32Ref, asF32 (snd (get "arr_0")))

[<Theory>]
[<InlineData(false)>]
[<InlineData(true)>]
let ``npz round trip, stored or deflated`` (compressed: bool) =
    let zeros = Storage.F64(Array.zeroCreate 1000)

    let arrays =
        [
            "w", [| 2; 3 |], Storage.F32 f32Ref
            "layer/b", [| 5 |], Storage.F64 f64Ref
            "z", [| 10; 100 |], zeros
            "s", [||], Storage.F32 [| 1.0f |]
        ]

    use ms = new MemoryStream()
    NpyFormat.writeNpzWith compressed ms arrays
    let back = NpyFormat.readNpz (new MemoryStream(ms.ToArray()))
    Assert.Equal<string list>([ "w"; "layer/b"; "z"; "s" ], List.map fst back)

    for (name, shape, storage), (name', (shape', storage')) in List.zip arrays back do
        Assert.Equal(name, name')
        Assert.Equal<int[]>(shape, shape')
        Assert.Equal(storage, storage')

    use zip = new ZipArchive(new MemoryStream(ms.ToArray()), ZipArchiveMode.Read)
    let z = zip.GetEntry "z.npy"
    Assert.Equal(int64 (128 + 8000), z.Length)

    if compressed then
        Assert.True(z.CompressedLength < z.Length / 10L)
    else
        Assert.Equal(z.Length, z.CompressedLength)

[<Fact>]
let ``npz errors`` () =
    use ms = new MemoryStream()

    Assert.Throws<ArgumentException>(fun () ->
        NpyFormat.writeNpz ms [ "a", [| 1 |], Storage.F32 [| 1.0f |]; "a", [| 1 |], Storage.F32 [| 2.0f |] ])
    |> ignore

    Assert.Throws<ArgumentException>(fun () -> NpyFormat.writeNpz ms [ "", [| 1 |], Storage.F32 [| 1.0f |] ])
    |> ignore
    // Not a zip.
    let e =
        Assert.Throws<InvalidDataException>(fun () -> NpyFormat.readNpz (new MemoryStream(Array.zeroCreate 100)) |> ignore)

    Assert.Contains(".npz", e.Message)
    // A member that is not an array.
    use zms = new MemoryStream()

    do
        use zip = new ZipArchive(zms, ZipArchiveMode.Create, true)
        use w = new StreamWriter(zip.CreateEntry("readme.txt").Open())
        w.Write "hello"

    let e =
        Assert.Throws<InvalidDataException>(fun () -> NpyFormat.readNpz (new MemoryStream(zms.ToArray())) |> ignore)

    Assert.Contains("readme.txt", e.Message)
    // A broken member is named in the error.
    use bms = new MemoryStream()

    do
        use zip = new ZipArchive(bms, ZipArchiveMode.Create, true)
        use s = zip.CreateEntry("weights.npy").Open()
        s.Write(File.ReadAllBytes(fixture "unsupported_c16.npy"))

    let e =
        Assert.Throws<InvalidDataException>(fun () -> NpyFormat.readNpz (new MemoryStream(bms.ToArray())) |> ignore)

    Assert.Contains("weights.npy", e.Message)
    Assert.Contains("complex128", e.Message)

// ---------------------------------------------------------------------------------------------
// Tensors
// ---------------------------------------------------------------------------------------------

[<Fact>]
let ``tensors load from and save to .npy`` () =
    let t = TensorIo.loadNpy (fixture "f32_2x3.npy")
    Assert.Equal<int[]>([| 2; 3 |], t.Shape)
    Assert.Equal(Float32, t.DType)
    Assert.Equal<float32[]>(f32Ref, asF32 t.Storage)
    let dir = tempDir ()

    try
        let path = Path.Combine(dir, "t.npy")
        TensorIo.saveNpy path t
        Assert.Equal<byte[]>(File.ReadAllBytes(fixture "f32_2x3.npy"), File.ReadAllBytes path)
        let ints = TensorIo.loadNpy (fixture "dtypes/i4_be.npy")
        Assert.Equal(Int32, ints.DType)
        Assert.Equal<int[]>([| -2147483648; -1; 0; 2147483647 |], ints.ToInt32Array())
        // Written as NumPy writes int32: '<i4', C order.
        let intPath = Path.Combine(dir, "i.npy")
        TensorIo.saveNpy intPath ints
        Assert.Equal<byte[]>(File.ReadAllBytes(fixture "dtypes/i4_le.npy"), File.ReadAllBytes intPath)
        use ms = new MemoryStream()
        TensorIo.writeNpy ms ints
        ms.Position <- 0L
        let back = TensorIo.readNpy ms
        Assert.Equal<int[]>([| 4 |], back.Shape)
        Assert.Equal(ints.Storage, back.Storage)
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``tensors load from and save to .npz`` () =
    let m = Npz.load (fixture "compressed.npz")
    Assert.Equal<string list>([ "arr_0"; "bias"; "count"; "weights" ], m |> Map.keys |> List.ofSeq)
    Assert.Equal<int[]>([| 2; 3 |], m["weights"].Shape)
    Assert.Equal<float[]>(f64Ref, asF64 m["bias"].Storage)
    let dir = tempDir ()

    try
        for compressed in [ false; true ] do
            let path = Path.Combine(dir, "t.npz")
            let tensors = Npz.loadList (fixture "plain.npz")

            if compressed then
                Npz.saveCompressed path tensors
            else
                Npz.save path tensors

            let back = Npz.loadList path
            Assert.Equal<string list>(List.map fst tensors, List.map fst back)

            for (_, a), (_, b) in List.zip tensors back do
                Assert.Equal<int[]>(a.Shape, b.Shape)
                Assert.Equal(a.Storage, b.Storage)
    finally
        Directory.Delete(dir, true)

// ---------------------------------------------------------------------------------------------
// Damaged archives and unwritable targets
// ---------------------------------------------------------------------------------------------

/// An archive with a small member and a large one ("w", 4096 float64 values that deflate poorly).
let private damagedArchiveFixture (dir: string) (compressed: bool) =
    let rng = Random 7
    let w = Tensor.FromArray(Array.init 4096 (fun _ -> rng.NextDouble()), 4096)
    let path = Path.Combine(dir, (if compressed then "deflated.npz" else "stored.npz"))

    (if compressed then Npz.saveCompressed else Npz.save) path [ "b", Tensor.Scalar(1.0, Float64); "w", w ]

    path, w

/// A member's local header offset, where its (possibly compressed) data starts and how long it is.
let private memberData (bytes: byte[]) (name: string) =
    let nameBytes = Encoding.UTF8.GetBytes name
    let mutable found = None
    let mutable i = 0

    while found.IsNone && i + 30 <= bytes.Length do
        if BitConverter.ToUInt32(bytes, i) = 0x04034b50u then
            let n = int (BitConverter.ToUInt16(bytes, i + 26))
            let e = int (BitConverter.ToUInt16(bytes, i + 28))

            if
                n = nameBytes.Length
                && ReadOnlySpan(bytes, i + 30, n).SequenceEqual(ReadOnlySpan nameBytes)
            then
                found <- Some(i, i + 30 + n + e, int (BitConverter.ToUInt32(bytes, i + 18)))

        i <- i + 1

    found |> Option.defaultWith (fun () -> failwith $"no member %s{name}")

[<Theory>]
[<InlineData(false)>]
[<InlineData(true)>]
let ``a flipped byte in a member's data is reported with the file and member`` (compressed: bool) =
    let dir = tempDir ()

    try
        let path, w = damagedArchiveFixture dir compressed
        Assert.Equal(w.Storage, (Npz.load path).["w"].Storage)
        let bytes = File.ReadAllBytes path
        let _, start, length = memberData bytes "w.npy"
        // Well inside the element data (past the 128-byte .npy header when stored).
        let at = start + length * 3 / 4
        bytes[at] <- bytes[at] ^^^ 0x10uy
        File.WriteAllBytes(path, bytes)
        // Before, a stored member loaded with one wrong number and no error.
        let e = Assert.Throws<InvalidDataException>(fun () -> Npz.load path |> ignore)
        Assert.Contains(path, e.Message)
        Assert.Contains("w.npy", e.Message)
    finally
        Directory.Delete(dir, true)

[<Theory>]
[<InlineData(false)>]
[<InlineData(true)>]
let ``a CRC-32 mismatch is reported as such`` (compressed: bool) =
    let dir = tempDir ()

    try
        let path, _ = damagedArchiveFixture dir compressed
        let bytes = File.ReadAllBytes path
        let header, start, length = memberData bytes "w.npy"

        if compressed then
            // Damage the recorded checksum rather than the data, so that the data still inflates:
            // only the CRC-32 check can notice. Both copies: local header and central directory.
            let crc = BitConverter.ToUInt32(bytes, header + 14)

            for i in 0 .. bytes.Length - 4 do
                if BitConverter.ToUInt32(bytes, i) = crc then
                    bytes[i] <- bytes[i] ^^^ 0x01uy
        else
            let at = start + length - 3
            bytes[at] <- bytes[at] ^^^ 0x01uy

        File.WriteAllBytes(path, bytes)
        let e = Assert.Throws<InvalidDataException>(fun () -> Npz.load path |> ignore)
        Assert.Contains(path, e.Message)
        Assert.Contains("w.npy", e.Message)
        Assert.Contains("CRC-32", e.Message)
    finally
        Directory.Delete(dir, true)

[<Theory>]
[<InlineData(false)>]
[<InlineData(true)>]
let ``a truncated archive is reported with the file and the member cut short`` (compressed: bool) =
    let dir = tempDir ()

    try
        let path, _ = damagedArchiveFixture dir compressed
        let bytes = File.ReadAllBytes path
        let _, start, length = memberData bytes "w.npy"
        // Cut inside w's data: the central directory at the end is gone as well.
        File.WriteAllBytes(path, bytes[.. start + length / 2])
        let e = Assert.Throws<InvalidDataException>(fun () -> Npz.load path |> ignore)
        Assert.Contains(path, e.Message)
        Assert.Contains("truncated", e.Message)
        Assert.Contains("w.npy", e.Message)
        // Cut only the last bytes (the end of the central directory): still "truncated".
        File.WriteAllBytes(path, bytes[.. bytes.Length - 5])
        let e = Assert.Throws<InvalidDataException>(fun () -> Npz.load path |> ignore)
        Assert.Contains(path, e.Message)
        Assert.Contains("truncated", e.Message)
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``saving into a missing folder names the target, not the temporary file`` () =
    let dir = tempDir ()

    try
        let missing = Path.Combine(dir, "no-such-folder")
        let t = Tensor.FromArray([| 1.0f; 2.0f |], 2)

        let check (target: string) (save: unit -> unit) =
            let e = Assert.ThrowsAny<IOException>(save)
            Assert.Contains(target, e.Message)
            Assert.Contains(missing, e.Message)
            Assert.DoesNotContain(".tmp", e.Message)

        let npy = Path.Combine(missing, "t.npy")
        check npy (fun () -> TensorIo.saveNpy npy t)
        let npz = Path.Combine(missing, "t.npz")
        check npz (fun () -> Npz.save npz [ "t", t ])
        check npz (fun () -> Npz.saveCompressed npz [ "t", t ])
        Assert.False(Directory.Exists missing)
    finally
        Directory.Delete(dir, true)

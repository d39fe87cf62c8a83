# system.ps1: the operating system and files: whether files exist, their file versions, the files of
# one folder. Writes nothing.
# region: file_version
$FileVersionCache = @{}

function Get-FileVersion {
    # 'major.minor.build.private' of a file's version resource, or $null when it has none.
    param([string]$Path)
    if ([string]::IsNullOrEmpty($Path)) { return $null }
    if (-not $FileVersionCache.ContainsKey($Path)) {
        $FileVersionCache[$Path] = $null
        try {
            $info = [System.Diagnostics.FileVersionInfo]::GetVersionInfo($Path)
            $version = '{0}.{1}.{2}.{3}' -f $info.FileMajorPart, $info.FileMinorPart, $info.FileBuildPart, $info.FilePrivatePart
            if ($version -ne '0.0.0.0') { $FileVersionCache[$Path] = $version }
        } catch { $FileVersionCache[$Path] = $null }
    }
    return $FileVersionCache[$Path]
}

# region: op:os_info
$Operations['os_info'] = {
    param($Req)
    $os = Get-CimInstance -ClassName Win32_OperatingSystem -OperationTimeoutSec 60
    $product = ([string]$os.Caption).Trim() -replace '^Microsoft ', ''
    return @{ ok = $true; product = $product; version = [string]$os.Version; computer_name = [string]$env:COMPUTERNAME; emulated = $false }
}

# region: op:file_info
$Operations['file_info'] = {
    param($Req)
    $files = New-Object -TypeName System.Collections.Generic.List[object]
    foreach ($path in $Req.paths) {
        $files.Add(@{ path = $path; exists = ([System.IO.File]::Exists($path) -or [System.IO.Directory]::Exists($path)); version = (Get-FileVersion -Path $path) })
    }
    return @{ ok = $true; files = $files.ToArray() }
}

# region: op:file_list
$Operations['file_list'] = {
    param($Req)
    $files = New-Object -TypeName System.Collections.Generic.List[object]
    if ([System.IO.Directory]::Exists($Req.dir)) {
        foreach ($path in @([System.IO.Directory]::GetFiles($Req.dir, $Req.pattern) | Sort-Object)) {
            # GetFiles also matches 8.3 short names ('*.exe' finds 'a.exe1'): keep real matches only.
            if ([System.IO.Path]::GetFileName($path) -like $Req.pattern) { $files.Add(@{ path = [string]$path; version = (Get-FileVersion -Path $path) }) }
        }
    }
    return @{ ok = $true; files = $files.ToArray() }
}

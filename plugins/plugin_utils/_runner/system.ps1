# system.ps1: the operating system and files: whether files exist, their file versions, the files of
# one folder, and the site exceptions in people's Chrome and Edge profiles. Writes nothing.
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
# region: op:browser_site_settings
function Get-JsonMember {
    # $Object.<name>.<name>... of JavaScriptSerializer's JSON (case-sensitive names), or $null where one is missing.
    param($Object, [string[]]$Names)
    foreach ($name in $Names) { if ($Object -isnot [System.Collections.Generic.IDictionary[string,object]] -or -not $Object.ContainsKey($name)) { return $null } else { $Object = $Object[$name] } }
    return , $Object
}
$Operations['browser_site_settings'] = {
    param($Req)
    # Chrome's and Edge's files in each person's profile folder (ProfileList; signed in, or all with include_offline).
    # A user writes them: a link on the way is refused, a file over max_bytes or not a JSON object (JavaScriptSerializer,
    # names that differ only in case allowed) is an error, and only profile.content_settings.exceptions.<type> leaves the host.
    [void][System.Reflection.Assembly]::Load('System.Web.Extensions, Version=4.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35')
    $json = New-Object -TypeName System.Web.Script.Serialization.JavaScriptSerializer -Property @{ MaxJsonLength = [int]::MaxValue }
    $files = New-Object -TypeName System.Collections.Generic.List[object]
    $folders, $loaded = (Get-ProfileFolders), [Microsoft.Win32.Registry]::Users.GetSubKeyNames()
    foreach ($sid in @($folders.Keys | Sort-Object)) {
        if ($null -eq $folders[$sid] -or -not ($Req.include_offline -or $loaded -contains $sid)) { continue }
        foreach ($browser in @(@('chrome', 'Google\Chrome'), @('edge', 'Microsoft\Edge'))) {
            $root = Join-Path -Path $folders[$sid] -ChildPath "AppData\Local\$($browser[1])\User Data"
            $names = New-Object -TypeName System.Collections.Generic.List[object]; $names.Add($null)  # Local State, then its profiles
            for ($i = 0; $i -lt $names.Count; $i++) {
                $path = if ($null -eq $names[$i]) { "$root\Local State" } else { "$root\$($names[$i])\Preferences" }
                $exists, $modified, $problem, $exceptions = $false, $null, $null, $null
                try {
                    $file = New-Object -TypeName System.IO.FileInfo -ArgumentList $path; $exists = $file.Exists
                    if (@($file, $file.Directory, $file.Directory.Parent) | Where-Object -FilterScript { $_.Exists -and ($_.Attributes -band [System.IO.FileAttributes]::ReparsePoint) }) { throw (New-OpException -Kind 'forbidden' -Message 'a link (reparse point) on the way is not followed') }
                    if ($exists) {
                        $modified = $file.LastWriteTimeUtc.ToString('o')
                        if ($file.Length -gt $Req.max_bytes) { throw (New-OpException -Kind 'failed' -Message "$($file.Length) bytes, over the limit of $($Req.max_bytes)") }
                        try { $data = $json.DeserializeObject([System.IO.File]::ReadAllText($path, [System.Text.Encoding]::UTF8)); if ($data -isnot [System.Collections.Generic.IDictionary[string,object]]) { throw 'no object' } } catch { throw (New-OpException -Kind 'failed' -Message 'not a JSON object') }
                        $cache = Get-JsonMember -Object $data -Names @('profile', 'info_cache')
                        # Folder names only: a name that could lead out of User Data is left out.
                        if ($null -eq $names[$i] -and $cache -is [System.Collections.Generic.IDictionary[string,object]]) { foreach ($name in @($cache.Keys)) { if ($name -match '^[A-Za-z0-9 _-]{1,64}\z') { $names.Add($name) } } }
                        if ($null -ne $names[$i]) { $exceptions = @{}; foreach ($type in $Req.types) { $exceptions[$type] = Get-JsonMember -Object $data -Names @('profile', 'content_settings', 'exceptions', $type) } }
                    }
                } catch { $problem = '{0}: {1}' -f (Get-ErrorKind -Exception $_.Exception), (Get-ErrorMessage -Exception $_.Exception) }
                $files.Add(@{ sid = $sid; browser = $browser[0]; profile = $names[$i]; path = $path; exists = $exists; modified = $modified; error = $problem; exceptions = $exceptions })
            }
        }
    }
    return @{ ok = $true; files = $files.ToArray() }
}

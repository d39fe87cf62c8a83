# NHS-CM-RUNNER v1
# Runner of the nhs_cm.remediation collection, protocol v1 (docs/runner-protocol.md).
# The controller sends this text on standard input, followed by a line of four NUL characters
# and the request JSON; the bootstrap (BOOTSTRAP in _protocol.py) invokes it with the JSON as
# its only argument. It performs primitive reads only and decides nothing: all comparing and
# judging happens in Python on the controller. Every operation in $Operations returns exactly
# the reply fields listed in OPERATIONS (_protocol.py); tests/unit/test_runner_ps1.py checks
# that by parsing this file, so keep one hashtable literal per return statement.
# Windows PowerShell 5.1; ASCII only; no aliases.
# Sections: '# region: <name>' ... '# endregion' (not nested) mark what only some operations
# need; each $Operations entry is its own region 'op:<name>'. A request carries the lines outside
# any region, its operations' regions (RUNNER_SECTIONS in _protocol.py) and their entries, with
# indentation, blank and comment lines removed (here-strings are kept as they are). So keep
# every helper of an operation inside a region it lists, and write multi-line text only as a
# here-string; tests/unit/test_runner_ps1.py checks both.
param([string]$RequestJson)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$RunnerProtocol = 1
$ServiceStates = @('running', 'stopped', 'start_pending', 'stop_pending', 'continue_pending', 'pause_pending', 'paused', 'unknown')
$LoopbackHosts = @('localhost', '127.0.0.1', '[::1]')
$FileVersionCache = @{}
# What operations leave to do at the end of the request, even after a failure (unload a hive they
# loaded): script blocks returning $null or why they failed; run by Invoke-RequestCleanup.
$RequestCleanup = New-Object -TypeName System.Collections.Generic.List[scriptblock]

# ---------------------------------------------------------------------------------------------
# Errors: an operation throws New-OpException for an error of a known kind; anything else is
# classified by Get-ErrorKind from the exception chain.

function New-OpException {
    param([string]$Kind, [string]$Message)
    $exception = New-Object -TypeName System.InvalidOperationException -ArgumentList $Message
    $exception.Data['nhs_cm_kind'] = $Kind
    return $exception
}

function Get-ExceptionChain {
    param($Exception)
    $chain = New-Object -TypeName System.Collections.Generic.List[object]
    $current = $Exception
    while ($null -ne $current) {
        $chain.Add($current)
        $current = $current.InnerException
    }
    return ,$chain.ToArray()
}

function Get-ErrorKind {
    param($Exception)
    foreach ($item in (Get-ExceptionChain -Exception $Exception)) {
        if ($item.Data.Contains('nhs_cm_kind')) {
            return [string]$item.Data['nhs_cm_kind']
        }
        if ($item -is [System.UnauthorizedAccessException] -or $item -is [System.Security.SecurityException]) {
            return 'access_denied'
        }
        if ($item.HResult -eq -2147024891) {
            return 'access_denied'
        }
        if ($item -is [System.TimeoutException]) {
            return 'timeout'
        }
        if ($item -is [System.Management.Automation.ItemNotFoundException] -or $item -is [System.IO.FileNotFoundException]) {
            return 'not_found'
        }
        $typeName = $item.GetType().FullName
        if ($typeName -eq 'Microsoft.Management.Infrastructure.CimException') {
            $code = [string]$item.NativeErrorCode
            if ($code -eq 'AccessDenied') {
                return 'access_denied'
            }
            if ($code -eq 'NotFound' -or $code -eq 'InvalidClass' -or $code -eq 'InvalidNamespace') {
                return 'not_found'
            }
        }
    }
    return 'failed'
}

function Get-ErrorMessage {
    param($Exception)
    $chain = Get-ExceptionChain -Exception $Exception
    $innermost = $chain[$chain.Count - 1]
    return [string]$innermost.Message
}

function ConvertTo-ErrorResult {
    param($ErrorRecord)
    $exception = $ErrorRecord.Exception
    return @{ ok = $false; error = (Get-ErrorKind -Exception $exception); message = (Get-ErrorMessage -Exception $exception) }
}

# ---------------------------------------------------------------------------------------------
# Request fields: each helper gets the field's name (for messages) and value, checks it and
# returns it or the default. A wrong field is an invalid_request error result.

function Assert-Request {
    param([bool]$Condition, [string]$Message)
    if (-not $Condition) {
        throw (New-OpException -Kind 'invalid_request' -Message $Message)
    }
}

function Get-StringField {
    param([string]$Name, $Value, [bool]$Required, [string]$Default)
    if ($null -eq $Value) {
        Assert-Request -Condition (-not $Required) -Message "field '$Name' is required"
        return $Default
    }
    Assert-Request -Condition ($Value -is [string]) -Message "field '$Name' must be a string"
    return [string]$Value
}

function Get-ChoiceField {
    param([string]$Name, $Value, [string[]]$Choices, [string]$Default)
    if ($null -eq $Value) {
        return $Default
    }
    Assert-Request -Condition (($Value -is [string]) -and ($Choices -ccontains $Value)) -Message "field '$Name' must be one of $($Choices -join ', ')"
    return [string]$Value
}

function Get-IntField {
    param([string]$Name, $Value, [int]$Minimum, [int]$Maximum, [int]$Default)
    if ($null -eq $Value) {
        return $Default
    }
    $isInteger = ($Value -is [int]) -or ($Value -is [long])
    Assert-Request -Condition ($isInteger -and $Value -ge $Minimum -and $Value -le $Maximum) -Message "field '$Name' must be an integer from $Minimum to $Maximum"
    return [int]$Value
}

function Get-ListField {
    param([string]$Name, $Value, [bool]$Required, [string]$ItemType)
    if ($null -eq $Value) {
        Assert-Request -Condition (-not $Required) -Message "field '$Name' is required"
        return $null
    }
    Assert-Request -Condition ($Value -is [array]) -Message "field '$Name' must be a list"
    $items = New-Object -TypeName System.Collections.Generic.List[object]
    foreach ($item in $Value) {
        if ($ItemType -eq 'int') {
            $ok = ($item -is [int]) -or ($item -is [long])
            Assert-Request -Condition $ok -Message "field '$Name' must be a list of integers"
            $items.Add([int]$item)
        }
        else {
            Assert-Request -Condition ($item -is [string]) -Message "field '$Name' must be a list of strings"
            $items.Add([string]$item)
        }
    }
    return ,$items.ToArray()
}

# region: user_hives
function Get-BoolField {
    param([string]$Name, $Value, [bool]$Default)
    if ($null -eq $Value) {
        return $Default
    }
    Assert-Request -Condition ($Value -is [bool]) -Message "field '$Name' must be true or false"
    return [bool]$Value
}

function Get-PathDepthField {
    # A list of [key path relative to a hive root, depth 0..4] pairs, as Tuple[string, int].
    param([string]$Name, $Value)
    Assert-Request -Condition ($null -ne $Value) -Message "field '$Name' is required"
    Assert-Request -Condition ($Value -is [array]) -Message "field '$Name' must be a list of [key path, depth] pairs"
    $pairs = New-Object -TypeName System.Collections.Generic.List[object]
    foreach ($item in $Value) {
        $isPair = ($item -is [array]) -and ($item.Count -eq 2)
        Assert-Request -Condition $isPair -Message "field '$Name' must be a list of [key path, depth] pairs"
        $path = $item[0]
        $depth = $item[1]
        $pathOk = ($path -is [string]) -and ($path -match '^[^\\]+(\\[^\\]+)*$')
        Assert-Request -Condition $pathOk -Message "field '$Name' must hold key paths relative to the hive root, without empty parts"
        $depthOk = (($depth -is [int]) -or ($depth -is [long])) -and $depth -ge 0 -and $depth -le 4
        Assert-Request -Condition $depthOk -Message "field '$Name' must hold depths from 0 to 4"
        $pairs.Add([System.Tuple]::Create([string]$path, [int]$depth))
    }
    return ,$pairs.ToArray()
}
# endregion

# ---------------------------------------------------------------------------------------------
# Registry

# region: registry
function Split-RegistryKey {
    param([string]$Key)
    Assert-Request -Condition ($Key -match '^(?<hive>[^\\]+)(\\[^\\]+)*$') -Message "field 'key' must be HKLM\<path> or HKU\<path> without a trailing backslash"
    $hive = $Matches['hive'].ToUpperInvariant()
    Assert-Request -Condition ($hive -ne 'HKCU' -and $hive -ne 'HKEY_CURRENT_USER') -Message "field 'key' must not be HKCU (over WinRM it is the connecting account); read HKU\<SID>"
    Assert-Request -Condition ($hive -eq 'HKLM' -or $hive -eq 'HKU') -Message "field 'key' must start with HKLM or HKU"
    $subPath = ''
    if ($Key.Length -gt $hive.Length) {
        $subPath = $Key.Substring($hive.Length + 1)
    }
    if ($hive -eq 'HKU') {
        # HKU\.DEFAULT_PROFILE\... is the default profile's hive, mounted for this request.
        $subPath = Resolve-DefaultProfilePath -SubPath $subPath
    }
    $registryHive = [Microsoft.Win32.RegistryHive]::Users
    if ($hive -eq 'HKLM') {
        $registryHive = [Microsoft.Win32.RegistryHive]::LocalMachine
    }
    return @{ Hive = $registryHive; SubPath = $subPath }
}

function Open-RegistryKey {
    param([string]$Key, [string]$View)
    $parts = Split-RegistryKey -Key $Key
    $registryView = [Microsoft.Win32.RegistryView]::Registry64
    if ($View -eq '32') {
        $registryView = [Microsoft.Win32.RegistryView]::Registry32
    }
    $base = [Microsoft.Win32.RegistryKey]::OpenBaseKey($parts['Hive'], $registryView)
    if ($parts['SubPath'] -eq '') {
        return $base
    }
    try {
        return $base.OpenSubKey($parts['SubPath'], $false)
    }
    finally {
        $base.Close()
    }
}

function ConvertTo-HexString {
    param($Bytes)
    if ($null -eq $Bytes) {
        return $null
    }
    return ([System.BitConverter]::ToString([byte[]]$Bytes)).Replace('-', '').ToLowerInvariant()
}

function Read-RegistryValue {
    param([Microsoft.Win32.RegistryKey]$Key, [string]$Name)
    $kind = $Key.GetValueKind($Name)
    $data = $Key.GetValue($Name, $null, [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)
    switch ($kind.ToString()) {
        'String' {
            return @{ type = 'REG_SZ'; data = [string]$data }
        }
        'ExpandString' {
            return @{ type = 'REG_EXPAND_SZ'; data = [string]$data }
        }
        'MultiString' {
            $strings = New-Object -TypeName System.Collections.Generic.List[object]
            foreach ($item in @($data)) {
                $strings.Add([string]$item)
            }
            return @{ type = 'REG_MULTI_SZ'; data = $strings.ToArray() }
        }
        'DWord' {
            $unsigned = [System.BitConverter]::ToUInt32([System.BitConverter]::GetBytes([int32]$data), 0)
            return @{ type = 'REG_DWORD'; data = $unsigned }
        }
        'QWord' {
            $unsigned = [System.BitConverter]::ToUInt64([System.BitConverter]::GetBytes([int64]$data), 0)
            return @{ type = 'REG_QWORD'; data = $unsigned }
        }
        'Binary' {
            return @{ type = 'REG_BINARY'; data = (ConvertTo-HexString -Bytes $data) }
        }
    }
    # RegistryValueKind None/Unknown: REG_NONE and the rarer raw types, data as bytes.
    if ($data -is [byte[]]) {
        return @{ type = 'REG_NONE'; data = (ConvertTo-HexString -Bytes $data) }
    }
    return @{ type = 'REG_NONE'; data = $null }
}

function Read-RegistryValues {
    param([Microsoft.Win32.RegistryKey]$Key, $Names)
    $values = @{}
    foreach ($name in $Key.GetValueNames()) {
        $wanted = ($null -eq $Names) -or ($Names -contains $name)
        if ($wanted) {
            $values[$name] = Read-RegistryValue -Key $Key -Name $name
        }
    }
    return $values
}

function Read-RegistryNode {
    param([Microsoft.Win32.RegistryKey]$Key, [int]$Depth, $Names)
    $subkeys = @{}
    foreach ($subName in $Key.GetSubKeyNames()) {
        if ($Depth -le 0) {
            $subkeys[$subName] = $null
            continue
        }
        $child = $null
        try {
            $child = $Key.OpenSubKey($subName, $false)
        }
        catch {
            $subkeys[$subName] = @{ values = @{}; subkeys = @{}; error = (Get-ErrorKind -Exception $_.Exception) }
            continue
        }
        if ($null -eq $child) {
            continue
        }
        try {
            $subkeys[$subName] = Read-RegistryNode -Key $child -Depth ($Depth - 1) -Names $Names
        }
        finally {
            $child.Close()
        }
    }
    return @{ values = (Read-RegistryValues -Key $Key -Names $Names); subkeys = $subkeys }
}
# endregion

# ---------------------------------------------------------------------------------------------
# Files and processes

# region: file_version
function Get-FileVersion {
    param([string]$Path)
    if ([string]::IsNullOrEmpty($Path)) {
        return $null
    }
    if ($FileVersionCache.ContainsKey($Path)) {
        return $FileVersionCache[$Path]
    }
    $version = $null
    try {
        $info = [System.Diagnostics.FileVersionInfo]::GetVersionInfo($Path)
        $hasVersion = $info.FileMajorPart -ne 0 -or $info.FileMinorPart -ne 0 -or $info.FileBuildPart -ne 0 -or $info.FilePrivatePart -ne 0
        if ($hasVersion) {
            $version = '{0}.{1}.{2}.{3}' -f $info.FileMajorPart, $info.FileMinorPart, $info.FileBuildPart, $info.FilePrivatePart
        }
    }
    catch {
        $version = $null
    }
    $FileVersionCache[$Path] = $version
    return $version
}
# endregion

# region: processes
function Get-ProcessImageMap {
    # One CIM query gives every image path (also of 32-bit processes); Process.Path reads the
    # main module of each process instead and is the fallback.
    $map = @{}
    try {
        foreach ($item in @(Get-CimInstance -ClassName Win32_Process -Property @('ProcessId', 'ExecutablePath') -OperationTimeoutSec 60)) {
            if (-not [string]::IsNullOrEmpty($item.ExecutablePath)) {
                $map[[int]$item.ProcessId] = [string]$item.ExecutablePath
            }
        }
    }
    catch {
        $map = @{}
    }
    return $map
}

function Get-ProcessImage {
    param($Process, [hashtable]$ImageMap)
    $processId = [int]$Process.Id
    if ($ImageMap.ContainsKey($processId)) {
        return $ImageMap[$processId]
    }
    try {
        $path = $Process.Path
        if ([string]::IsNullOrEmpty($path)) {
            return $null
        }
        return [string]$path
    }
    catch {
        return $null
    }
}

function Get-ProcessUser {
    param($Process)
    $property = $Process.PSObject.Properties['UserName']
    if ($null -eq $property -or [string]::IsNullOrEmpty($property.Value)) {
        return $null
    }
    return [string]$property.Value
}

function Get-AllProcesses {
    # -IncludeUserName needs elevation; without it the user is reported as null.
    try {
        return ,@(Get-Process -IncludeUserName -ErrorAction Stop)
    }
    catch {
        return ,@(Get-Process)
    }
}
# endregion

# ---------------------------------------------------------------------------------------------
# Services, listeners, HTTP

# region: service_state
function ConvertTo-ServiceState {
    param([string]$State)
    $normal = $State.ToLowerInvariant().Replace(' ', '_')
    if ($ServiceStates -contains $normal) {
        return $normal
    }
    return 'unknown'
}
# endregion

# region: listeners
function Get-ListenersFromNetstat {
    # Fallback for Windows 7 / Server 2008 R2, which lack Get-NetTCPConnection. A listening
    # socket is recognised by its foreign address (0.0.0.0:0 or [::]:0), not by the localised
    # state column.
    $found = New-Object -TypeName System.Collections.Generic.List[object]
    foreach ($line in @(& netstat.exe -a -n -o -p TCP) + @(& netstat.exe -a -n -o -p TCPv6)) {
        $fields = @(([string]$line).Trim() -split '\s+')
        if ($fields.Count -lt 5 -or $fields[0] -ne 'TCP') {
            continue
        }
        if ($fields[2] -ne '0.0.0.0:0' -and $fields[2] -ne '[::]:0') {
            continue
        }
        $colon = $fields[1].LastIndexOf(':')
        $address = $fields[1].Substring(0, $colon).Trim('[', ']')
        $found.Add(@{ address = $address; port = [int]$fields[1].Substring($colon + 1); pid = [int]$fields[$fields.Count - 1] })
    }
    return ,$found.ToArray()
}

function Get-AllListeners {
    $command = Get-Command -Name 'Get-NetTCPConnection' -ErrorAction SilentlyContinue
    if ($null -eq $command) {
        return ,(Get-ListenersFromNetstat)
    }
    $found = New-Object -TypeName System.Collections.Generic.List[object]
    $connections = @()
    try {
        $connections = @(Get-NetTCPConnection -State Listen -ErrorAction Stop)
    }
    catch {
        $category = [string]$_.CategoryInfo.Category
        if ($category -ne 'ObjectNotFound') {
            throw
        }
    }
    foreach ($connection in $connections) {
        $found.Add(@{ address = [string]$connection.LocalAddress; port = [int]$connection.LocalPort; pid = [int]$connection.OwningProcess })
    }
    return ,$found.ToArray()
}
# endregion

# region: http
function Test-LoopbackUrl {
    param([string]$Url)
    $uri = $null
    $parsed = [System.Uri]::TryCreate($Url, [System.UriKind]::Absolute, [ref]$uri)
    Assert-Request -Condition $parsed -Message "field 'url' is not an absolute URL"
    Assert-Request -Condition ($uri.Scheme -eq 'http' -or $uri.Scheme -eq 'https') -Message "field 'url' must be an http or https URL"
    $hostOk = ($LoopbackHosts -contains $uri.Host) -and ([string]::IsNullOrEmpty($uri.UserInfo))
    Assert-Request -Condition $hostOk -Message "field 'url' must have the host localhost, 127.0.0.1 or [::1]"
    return $uri
}

function Read-ResponseBody {
    param($Response)
    $stream = $Response.GetResponseStream()
    $reader = New-Object -TypeName System.IO.StreamReader -ArgumentList $stream, ([System.Text.Encoding]::UTF8)
    try {
        $buffer = New-Object -TypeName 'char[]' -ArgumentList 4096
        $count = $reader.ReadBlock($buffer, 0, 4096)
        return [string]::new($buffer, 0, $count)
    }
    finally {
        $reader.Close()
    }
}

function Get-WebError {
    param($Exception)
    foreach ($item in (Get-ExceptionChain -Exception $Exception)) {
        if ($item -is [System.Net.WebException]) {
            return $item
        }
    }
    return $null
}

function Get-NoAnswerReason {
    param($WebError)
    if ($null -eq $WebError) {
        return 'failed'
    }
    $status = [string]$WebError.Status
    if ($status -eq 'Timeout') {
        return 'timeout'
    }
    foreach ($item in (Get-ExceptionChain -Exception $WebError)) {
        if ($item -is [System.Net.Sockets.SocketException]) {
            $code = [string]$item.SocketErrorCode
            if ($code -eq 'ConnectionRefused') {
                return 'connection refused'
            }
            return "$status ($code)"
        }
    }
    return "$status ($($WebError.Message))"
}
# endregion

# ---------------------------------------------------------------------------------------------
# Sessions
# Why the WTS API and not `query user`: quser.exe prints localised headers and states
# ("Active", "Aktiv", "Disc", "Getr."), truncates user names to 20 characters, omits the
# domain (so the SID cannot be resolved reliably) and fails with exit code 1 when nobody is
# logged on. WTSEnumerateSessions / WTSQuerySessionInformation give the session id, the exact
# state, the user and the domain independently of the display language. The cost is one
# Add-Type (a C# compile of about a second), done only when session_list is requested.

# region: sessions
$WtsSource = @'
using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;

namespace NhsCmRunner
{
    public sealed class WtsSession
    {
        public int Id;
        public int State;
        public string User;
        public string Domain;
    }

    public static class Wts
    {
        [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
        private struct WTS_SESSION_INFO
        {
            public int SessionId;
            public IntPtr WinStationName;
            public int State;
        }

        [DllImport("wtsapi32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
        private static extern bool WTSEnumerateSessionsW(IntPtr server, int reserved, int version, out IntPtr info, out int count);

        [DllImport("wtsapi32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
        private static extern bool WTSQuerySessionInformationW(IntPtr server, int sessionId, int infoClass, out IntPtr buffer, out int bytes);

        [DllImport("wtsapi32.dll")]
        private static extern void WTSFreeMemory(IntPtr memory);

        private const int WTSUserName = 5;
        private const int WTSDomainName = 7;

        private static string Query(int sessionId, int infoClass)
        {
            IntPtr buffer;
            int bytes;
            if (!WTSQuerySessionInformationW(IntPtr.Zero, sessionId, infoClass, out buffer, out bytes))
            {
                return null;
            }
            try
            {
                return Marshal.PtrToStringUni(buffer);
            }
            finally
            {
                WTSFreeMemory(buffer);
            }
        }

        public static WtsSession[] List()
        {
            IntPtr info;
            int count;
            if (!WTSEnumerateSessionsW(IntPtr.Zero, 0, 1, out info, out count))
            {
                throw new System.ComponentModel.Win32Exception(Marshal.GetLastWin32Error());
            }
            List<WtsSession> sessions = new List<WtsSession>();
            try
            {
                int size = Marshal.SizeOf(typeof(WTS_SESSION_INFO));
                for (int i = 0; i < count; i++)
                {
                    IntPtr item = new IntPtr(info.ToInt64() + (long)i * size);
                    WTS_SESSION_INFO raw = (WTS_SESSION_INFO)Marshal.PtrToStructure(item, typeof(WTS_SESSION_INFO));
                    WtsSession session = new WtsSession();
                    session.Id = raw.SessionId;
                    session.State = raw.State;
                    session.User = Query(raw.SessionId, WTSUserName);
                    session.Domain = Query(raw.SessionId, WTSDomainName);
                    sessions.Add(session);
                }
            }
            finally
            {
                WTSFreeMemory(info);
            }
            return sessions.ToArray();
        }
    }
}
'@

function Get-WtsSessions {
    if ($null -eq ('NhsCmRunner.Wts' -as [type])) {
        Add-Type -TypeDefinition $WtsSource -Language CSharp
    }
    return ,[NhsCmRunner.Wts]::List()
}

function ConvertTo-SessionState {
    param([int]$State)
    # WTS_CONNECTSTATE_CLASS: 0 WTSActive, 4 WTSDisconnected.
    if ($State -eq 0) {
        return 'active'
    }
    if ($State -eq 4) {
        return 'disconnected'
    }
    return 'other'
}

function Resolve-AccountSid {
    param([string]$Domain, [string]$User)
    try {
        if ([string]::IsNullOrEmpty($Domain)) {
            $account = New-Object -TypeName System.Security.Principal.NTAccount -ArgumentList $User
        }
        else {
            $account = New-Object -TypeName System.Security.Principal.NTAccount -ArgumentList $Domain, $User
        }
        return [string]$account.Translate([System.Security.Principal.SecurityIdentifier]).Value
    }
    catch {
        return $null
    }
}
# endregion

# ---------------------------------------------------------------------------------------------
# User hives
# People's profiles are the SIDs under ProfileList plus any person's hive loaded under HKU. The
# pattern is USER_SID_PATTERN of _protocol.py: service SIDs, the system accounts and the
# <sid>_Classes hives never match. A profile's folder is its ProfileImagePath, never
# C:\Users\<name>. A hive that is not loaded is loaded by reg.exe (which enables the backup and
# restore privileges it needs; the account must be a local administrator) under a unique
# HKU\nhs_cm_<random> mount point, read through read-only handles only, and unloaded in
# `finally`, after every handle is closed and the finalizers have run (a handle left open makes
# the unload fail), with a few retries.

# region: user_hives
$UserSidPattern = '^S-1-(5-21|12-1)-\d+-\d+-\d+-\d+$'
$ProfileListKey = 'HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList'
$RegExe = Join-Path -Path $env:SystemRoot -ChildPath 'System32\reg.exe'

function Get-ProfileImagePath {
    param([Microsoft.Win32.RegistryKey]$ProfileList, [string]$Sid)
    $entry = $null
    try {
        $entry = $ProfileList.OpenSubKey($Sid, $false)
    }
    catch {
        return $null
    }
    if ($null -eq $entry) {
        return $null
    }
    try {
        $raw = $entry.GetValue('ProfileImagePath', $null, [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)
    }
    finally {
        $entry.Close()
    }
    if ([string]::IsNullOrEmpty($raw)) {
        return $null
    }
    return [System.Environment]::ExpandEnvironmentVariables([string]$raw)
}

function Get-UserProfileTable {
    # SID -> the profile's folder (ProfileImagePath, expanded) or $null when unknown.
    $table = @{}
    $list = Open-RegistryKey -Key $ProfileListKey -View '64'
    if ($null -ne $list) {
        try {
            foreach ($sid in $list.GetSubKeyNames()) {
                if ($sid -match $UserSidPattern) {
                    $table[$sid] = Get-ProfileImagePath -ProfileList $list -Sid $sid
                }
            }
        }
        finally {
            $list.Close()
        }
    }
    $users = [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]::Users, [Microsoft.Win32.RegistryView]::Registry64)
    try {
        foreach ($name in $users.GetSubKeyNames()) {
            if (($name -match $UserSidPattern) -and -not $table.ContainsKey($name)) {
                $table[$name] = $null
            }
        }
    }
    finally {
        $users.Close()
    }
    return $table
}

function Test-UserHiveLoaded {
    param([string]$Sid)
    $users = [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]::Users, [Microsoft.Win32.RegistryView]::Registry64)
    try {
        $hive = $users.OpenSubKey($Sid, $false)
    }
    catch {
        # It exists but cannot be opened: loaded; each key read then says why it failed.
        return $true
    }
    finally {
        $users.Close()
    }
    if ($null -eq $hive) {
        return $false
    }
    $hive.Close()
    return $true
}

function Resolve-SidAccount {
    param([string]$Sid)
    try {
        $identifier = New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList $Sid
        return [string]$identifier.Translate([System.Security.Principal.NTAccount]).Value
    }
    catch {
        return $null
    }
}

function Read-UserKey {
    # One key of a user hive as a node {exists, values, subkeys, error}.
    param([string]$Key, [int]$Depth)
    try {
        $handle = Open-RegistryKey -Key $Key -View '64'
    }
    catch {
        return @{ exists = $false; values = @{}; subkeys = @{}; error = (Get-ErrorKind -Exception $_.Exception) }
    }
    if ($null -eq $handle) {
        return @{ exists = $false; values = @{}; subkeys = @{}; error = $null }
    }
    try {
        $node = Read-RegistryNode -Key $handle -Depth $Depth -Names $null
    }
    catch {
        return @{ exists = $true; values = @{}; subkeys = @{}; error = (Get-ErrorKind -Exception $_.Exception) }
    }
    finally {
        $handle.Close()
    }
    return @{ exists = $true; values = $node['values']; subkeys = $node['subkeys']; error = $null }
}

function Read-UserKeys {
    # Every requested key below $Root (HKU\<sid> or HKU\<mount point>), by relative path.
    param([string]$Root, $Paths)
    $keys = @{}
    foreach ($pair in $Paths) {
        $keys[$pair.Item1] = Read-UserKey -Key ('{0}\{1}' -f $Root, $pair.Item1) -Depth $pair.Item2
    }
    return $keys
}

function Invoke-RegExe {
    # reg.exe load/unload: $null on success, else why it failed. In Windows PowerShell 5.1 a
    # native command's stderr under 'Stop' would throw, hence the local preference.
    param([string[]]$Arguments)
    $ErrorActionPreference = 'Continue'
    $output = @(& $RegExe @Arguments 2>&1)
    if ($LASTEXITCODE -eq 0) {
        return $null
    }
    $text = (@($output | ForEach-Object -Process { ([string]$_).Trim() }) -join ' ').Trim()
    return ('reg.exe {0} exited with {1}: {2}' -f $Arguments[0], $LASTEXITCODE, $text)
}

function Dismount-UserHive {
    param([string]$Mount)
    $problem = $null
    for ($attempt = 1; $attempt -le 5; $attempt++) {
        [System.GC]::Collect()
        [System.GC]::WaitForPendingFinalizers()
        $problem = Invoke-RegExe -Arguments @('unload', ('HKU\{0}' -f $Mount))
        if ($null -eq $problem) {
            return $null
        }
        Start-Sleep -Milliseconds (200 * $attempt)
    }
    return $problem
}

function Read-OfflineHive {
    # Load <profile folder>\NTUSER.DAT, read the keys, unload it even when reading failed.
    # Returns @{ Mount; Keys; Error } where Error is '<kind>: <message>' or $null.
    param([string]$ProfilePath, $Paths)
    $result = @{ Mount = $null; Keys = @{}; Error = $null }
    if ([string]::IsNullOrEmpty($ProfilePath)) {
        $result['Error'] = 'not_found: ProfileList has no ProfileImagePath for this profile'
        return $result
    }
    $file = Join-Path -Path $ProfilePath -ChildPath 'NTUSER.DAT'
    if (-not [System.IO.File]::Exists($file)) {
        $result['Error'] = 'not_found: {0} does not exist' -f $file
        return $result
    }
    $mount = 'nhs_cm_{0}' -f [System.Guid]::NewGuid().ToString('N').Substring(0, 12)
    $loadProblem = Invoke-RegExe -Arguments @('load', ('HKU\{0}' -f $mount), $file)
    if ($null -ne $loadProblem) {
        $result['Error'] = 'failed: cannot load {0}: {1}' -f $file, $loadProblem
        return $result
    }
    $result['Mount'] = $mount
    try {
        $result['Keys'] = Read-UserKeys -Root ('HKU\{0}' -f $mount) -Paths $Paths
    }
    catch {
        $result['Error'] = '{0}: {1}' -f (Get-ErrorKind -Exception $_.Exception), (Get-ErrorMessage -Exception $_.Exception)
    }
    finally {
        $unloadProblem = Dismount-UserHive -Mount $mount
        if ($null -ne $unloadProblem) {
            $unloadText = 'failed: cannot unload HKU\{0}: {1}' -f $mount, $unloadProblem
            if ($null -ne $result['Error']) {
                $unloadText = '{0}; {1}' -f $result['Error'], $unloadText
            }
            $result['Error'] = $unloadText
        }
    }
    return $result
}

# The default profile (the template of the profiles of users who sign in later) is the hive
# <ProfileList value 'Default', expanded>\NTUSER.DAT, resolved here, never a path the controller
# sends. A key HKU\.DEFAULT_PROFILE[\...] of any registry operation stands for it: on first use in
# a request the hive is loaded under a unique HKU\nhs_cm_<12 hex> mount point and the key is
# mapped there (Split-RegistryKey); Invoke-RequestCleanup unloads it at the end of the request,
# even after a failure. Replies and backups keep the HKU\.DEFAULT_PROFILE form, so a rollback
# later mounts the hive afresh.
$DefaultProfileRoot = '.DEFAULT_PROFILE'
$DefaultProfileState = @{ Mount = $null; Kind = $null; Error = $null }

function Get-DefaultProfileFile {
    $list = Open-RegistryKey -Key $ProfileListKey -View '64'
    if ($null -eq $list) {
        throw (New-OpException -Kind 'not_found' -Message "$ProfileListKey does not exist")
    }
    try {
        $raw = $list.GetValue('Default', $null, [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)
    }
    finally {
        $list.Close()
    }
    if ([string]::IsNullOrEmpty($raw)) {
        throw (New-OpException -Kind 'not_found' -Message "$ProfileListKey has no value 'Default' (the default profile's folder)")
    }
    $folder = [System.Environment]::ExpandEnvironmentVariables([string]$raw)
    return Join-Path -Path $folder -ChildPath 'NTUSER.DAT'
}

function Mount-DefaultProfile {
    # Load the default profile's hive under a new mount point; throws not_found or failed.
    $file = Get-DefaultProfileFile
    if (-not [System.IO.File]::Exists($file)) {
        throw (New-OpException -Kind 'not_found' -Message ('the default profile hive {0} does not exist' -f $file))
    }
    $mount = 'nhs_cm_{0}' -f [System.Guid]::NewGuid().ToString('N').Substring(0, 12)
    $problem = Invoke-RegExe -Arguments @('load', ('HKU\{0}' -f $mount), $file)
    if ($null -ne $problem) {
        throw (New-OpException -Kind 'failed' -Message ('cannot load the default profile hive {0}: {1}' -f $file, $problem))
    }
    return $mount
}

function Dismount-DefaultProfile {
    # Unload the default profile's hive if this request loaded it: $null, or why it failed.
    $mount = $DefaultProfileState['Mount']
    if ($null -eq $mount) {
        return $null
    }
    $problem = Dismount-UserHive -Mount $mount
    if ($null -ne $problem) {
        return ('the default profile hive stays loaded as HKU\{0}: {1}' -f $mount, $problem)
    }
    $DefaultProfileState['Mount'] = $null
    return $null
}

function Resolve-DefaultProfilePath {
    # A path below HKU: .DEFAULT_PROFILE[\...] becomes <mount point>[\...] (loaded on first use;
    # a load that failed fails every later use in the request the same way); others unchanged.
    param([string]$SubPath)
    $first = $SubPath.Split('\')[0]
    if (-not $first.Equals($DefaultProfileRoot, [System.StringComparison]::OrdinalIgnoreCase)) {
        return $SubPath
    }
    if ($null -ne $DefaultProfileState['Error']) {
        throw (New-OpException -Kind $DefaultProfileState['Kind'] -Message $DefaultProfileState['Error'])
    }
    if ($null -eq $DefaultProfileState['Mount']) {
        try {
            $mount = Mount-DefaultProfile
        }
        catch {
            $DefaultProfileState['Kind'] = Get-ErrorKind -Exception $_.Exception
            $DefaultProfileState['Error'] = Get-ErrorMessage -Exception $_.Exception
            throw
        }
        $DefaultProfileState['Mount'] = $mount
        $RequestCleanup.Add({ Dismount-DefaultProfile })
    }
    return $DefaultProfileState['Mount'] + $SubPath.Substring($first.Length)
}
# endregion

# ---------------------------------------------------------------------------------------------
# Group Policy: Resultant Set of Policy
# RSoP logging keeps what Group Policy applied in WMI: root\rsop\computer for the computer and
# root\rsop\user\<SID with '_' for '-'> for each user who has logged on. Each registry-based
# (Administrative Templates) value is an RSOP_RegistryPolicySetting; precedence 1 is the one in
# effect. RSOP_GPO maps the GPO id to its display name. Group Policy Preferences are not
# registry policy and are not listed.

# region: rsop
$RsopUserNamespacePattern = '^S_1_(5_21|12_1)(_\d+){4}$'

function Get-RsopGpoNames {
    param([string]$Namespace)
    $names = @{}
    foreach ($gpo in @(Get-CimInstance -Namespace $Namespace -ClassName 'RSOP_GPO' -OperationTimeoutSec 60)) {
        $names[[string]$gpo.id] = [string]$gpo.name
    }
    return $names
}

function Get-GpoName {
    param([hashtable]$Names, [string]$Id)
    if ($Names.ContainsKey($Id) -and -not [string]::IsNullOrEmpty($Names[$Id])) {
        return $Names[$Id]
    }
    return $Id
}

function Test-KeyPrefix {
    param([string]$Key, $Prefixes)
    if ($null -eq $Prefixes) {
        return $true
    }
    foreach ($prefix in $Prefixes) {
        $trimmed = $prefix.TrimEnd('\')
        if ($Key.Equals($trimmed, [System.StringComparison]::OrdinalIgnoreCase)) {
            return $true
        }
        if ($Key.StartsWith($trimmed + '\', [System.StringComparison]::OrdinalIgnoreCase)) {
            return $true
        }
    }
    return $false
}

function Get-RsopRegistrySettings {
    # The registry policy values in effect in one RSoP namespace whose key matches $Prefixes.
    param([string]$Namespace, $Prefixes)
    $found = New-Object -TypeName System.Collections.Generic.List[object]
    foreach ($setting in @(Get-CimInstance -Namespace $Namespace -ClassName 'RSOP_RegistryPolicySetting' -Filter 'precedence = 1' -OperationTimeoutSec 60)) {
        $key = ([string]$setting.registryKey).Trim('\')
        if ($setting.deleted -or [string]::IsNullOrEmpty($key)) {
            continue
        }
        if (Test-KeyPrefix -Key $key -Prefixes $Prefixes) {
            $found.Add($setting)
        }
    }
    return ,$found.ToArray()
}

function Get-RsopUserSids {
    $sids = New-Object -TypeName System.Collections.Generic.List[object]
    foreach ($item in @(Get-CimInstance -Namespace 'root\rsop\user' -ClassName '__NAMESPACE' -OperationTimeoutSec 60)) {
        $name = [string]$item.Name
        if ($name -match $RsopUserNamespacePattern) {
            $sids.Add($name.Replace('_', '-'))
        }
    }
    return ,$sids.ToArray()
}
# endregion

# ---------------------------------------------------------------------------------------------
# Writes and their allow-list
# Every operation that changes the host checks its target here first, whatever the controller
# asks, and answers 'forbidden' otherwise: registry keys of the browser and Internet Settings
# policies this collection manages (and, only to delete an EMPTY key that a backup recorded as
# missing, their vendor parents), the NHS Port Service and the Smart Card service, scheduled
# tasks named nhs_cm_*, programs outside the Windows folder, and files in the backup folder.
# A key must be printable ASCII, at most 512 characters, without '/', empty, '.' or '..' parts.
# emulator/src/nhs_cm_emulator/write_ops.py holds the same patterns; a test checks that.

# region: write_allow
$WriteKeyPatterns = @(
    '^HKLM\\SOFTWARE\\Policies\\(Google\\Chrome|Microsoft\\Edge|Mozilla\\Firefox)(\\[^\\]+)*$',
    '^HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\(ZoneMap(\\[^\\]+)*|Zones\\1|ZoneMapKey)$',
    '^HKU\\(S-1-(5-21|12-1)(-[0-9]+){4}|nhs_cm_[0-9a-f]{12}|\.DEFAULT_PROFILE)\\Software\\Policies\\(Google\\Chrome|Microsoft\\Edge|Mozilla\\Firefox)(\\[^\\]+)*$',
    '^HKU\\(S-1-(5-21|12-1)(-[0-9]+){4}|nhs_cm_[0-9a-f]{12}|\.DEFAULT_PROFILE)\\Software\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\(ZoneMap(\\[^\\]+)*|Zones\\1|ZoneMapKey)$',
    '^HKU\\(S-1-(5-21|12-1)(-[0-9]+){4}|nhs_cm_[0-9a-f]{12}|\.DEFAULT_PROFILE)\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\(ZoneMap(\\[^\\]+)*|Zones\\1)$'
)
$DeleteKeyPatterns = @(
    '^HKLM\\SOFTWARE\\Policies\\(Google|Mozilla|Microsoft\\Windows|Microsoft\\Windows\\CurrentVersion|Microsoft\\Windows\\CurrentVersion\\Internet Settings|Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones)$',
    '^HKU\\(S-1-(5-21|12-1)(-[0-9]+){4}|nhs_cm_[0-9a-f]{12}|\.DEFAULT_PROFILE)\\Software\\Policies\\(Google|Mozilla|Microsoft|Microsoft\\Windows|Microsoft\\Windows\\CurrentVersion|Microsoft\\Windows\\CurrentVersion\\Internet Settings|Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones)$',
    '^HKU\\(S-1-(5-21|12-1)(-[0-9]+){4}|nhs_cm_[0-9a-f]{12}|\.DEFAULT_PROFILE)\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Zones$'
)
$WriteServiceNames = @('SCardSvr')
$WriteServiceDisplayNames = @('NHS Port Service')
$TaskNamePattern = '^nhs_cm_[A-Za-z0-9_-]{1,64}$'
$BackupIdPattern = '^[A-Za-z0-9_-]{1,80}$'
$WriteRegTypes = @('REG_SZ', 'REG_EXPAND_SZ', 'REG_MULTI_SZ', 'REG_DWORD', 'REG_QWORD', 'REG_BINARY')
$BackupFolder = Join-Path -Path $env:ProgramData -ChildPath 'nhs_cm\backups'

function Assert-Allowed {
    param([bool]$Condition, [string]$Message)
    if (-not $Condition) {
        throw (New-OpException -Kind 'forbidden' -Message $Message)
    }
}

function Test-KeyShape {
    # $null when the key is a plain path, else why it is not.
    param([string]$Key)
    if ($Key.Length -lt 1 -or $Key.Length -gt 512) {
        return 'is empty or longer than 512 characters'
    }
    if ($Key -cmatch '[^\x20-\x7E]') {
        return 'has control or non-ASCII characters'
    }
    if ($Key.Contains('/')) {
        return "has a '/'"
    }
    foreach ($segment in $Key.Split('\')) {
        if ($segment -eq '' -or $segment -eq '.' -or $segment -eq '..') {
            return "has an empty, '.' or '..' part"
        }
    }
    return $null
}

function Test-KeyMatch {
    param([string]$Key, [string[]]$Patterns)
    foreach ($pattern in $Patterns) {
        if ($Key -match $pattern) {
            return $true
        }
    }
    return $false
}

function Assert-WriteKey {
    param([string]$Key, [bool]$ForKeyDelete)
    $shape = Test-KeyShape -Key $Key
    Assert-Allowed -Condition ($null -eq $shape) -Message "key '$Key' $shape"
    $allowed = Test-KeyMatch -Key $Key -Patterns $WriteKeyPatterns
    if ($ForKeyDelete -and -not $allowed) {
        $allowed = Test-KeyMatch -Key $Key -Patterns $DeleteKeyPatterns
    }
    Assert-Allowed -Condition $allowed -Message "key '$Key' is not under a registry key this collection manages (the runner's write allow-list)"
}

function Assert-ValueName {
    param([string]$Name)
    $ok = ($Name.Length -le 255) -and ($Name -cnotmatch '[\x00-\x1F\x7F]')
    Assert-Allowed -Condition $ok -Message 'a value name must be at most 255 characters without control characters'
}

function Test-ProgramPath {
    # $null when the path is an .exe on a local drive outside the Windows folder, else why not.
    param([string]$Path)
    if ($Path.Length -gt 260) {
        return 'is longer than 260 characters'
    }
    if ($Path -notmatch '^[A-Za-z]:\\[^<>"|?*\x00-\x1F]+\.exe$') {
        return 'is not the absolute path of a .exe on a local drive'
    }
    foreach ($segment in $Path.Split('\')) {
        if ($segment -eq '.' -or $segment -eq '..' -or $segment -eq '') {
            return "has an empty, '.' or '..' part"
        }
    }
    $windows = $env:SystemRoot.TrimEnd('\') + '\'
    if ($Path.StartsWith($windows, [System.StringComparison]::OrdinalIgnoreCase)) {
        return 'lies under the Windows folder'
    }
    return $null
}
# endregion

# region: reg_write
function Get-RegistryView {
    param([string]$View)
    if ($View -eq '32') {
        return [Microsoft.Win32.RegistryView]::Registry32
    }
    return [Microsoft.Win32.RegistryView]::Registry64
}

function Open-KeyForWrite {
    # The key opened writable (created when missing and $Create), or $null when it does not exist.
    param([string]$Key, [string]$View, [bool]$Create)
    $parts = Split-RegistryKey -Key $Key
    $base = [Microsoft.Win32.RegistryKey]::OpenBaseKey($parts['Hive'], (Get-RegistryView -View $View))
    try {
        $handle = $base.OpenSubKey($parts['SubPath'], $true)
        if ($null -eq $handle -and $Create) {
            $handle = $base.CreateSubKey($parts['SubPath'])
        }
        return $handle
    }
    finally {
        $base.Close()
    }
}

function Test-RegistryKey {
    param([string]$Key, [string]$View)
    $handle = Open-RegistryKey -Key $Key -View $View
    if ($null -eq $handle) {
        return $false
    }
    $handle.Close()
    return $true
}

function Test-IntegerValue {
    param($Value)
    if ($Value -is [int] -or $Value -is [long]) {
        return $true
    }
    return ($Value -is [decimal]) -and ([decimal]::Truncate($Value) -eq $Value)
}

function ConvertTo-WriteValue {
    # @{ Data; Kind } as RegistryKey.SetValue wants them; invalid_request when data and type differ.
    param([string]$Type, $Data)
    if ($Type -eq 'REG_SZ' -or $Type -eq 'REG_EXPAND_SZ') {
        Assert-Request -Condition ($Data -is [string]) -Message "field 'data' must be a string for $Type"
        $kind = [Microsoft.Win32.RegistryValueKind]::String
        if ($Type -eq 'REG_EXPAND_SZ') {
            $kind = [Microsoft.Win32.RegistryValueKind]::ExpandString
        }
        return @{ Data = [string]$Data; Kind = $kind }
    }
    if ($Type -eq 'REG_MULTI_SZ') {
        Assert-Request -Condition ($Data -is [array]) -Message "field 'data' must be a list of strings for REG_MULTI_SZ"
        $strings = New-Object -TypeName System.Collections.Generic.List[string]
        foreach ($item in $Data) {
            Assert-Request -Condition ($item -is [string]) -Message "field 'data' must be a list of strings for REG_MULTI_SZ"
            $strings.Add([string]$item)
        }
        return @{ Data = $strings.ToArray(); Kind = [Microsoft.Win32.RegistryValueKind]::MultiString }
    }
    if ($Type -eq 'REG_DWORD') {
        $ok = (Test-IntegerValue -Value $Data) -and $Data -ge 0 -and $Data -le 4294967295
        Assert-Request -Condition $ok -Message "field 'data' must be an integer from 0 to 4294967295 for REG_DWORD"
        $bytes = [System.BitConverter]::GetBytes([uint32]$Data)
        return @{ Data = [System.BitConverter]::ToInt32($bytes, 0); Kind = [Microsoft.Win32.RegistryValueKind]::DWord }
    }
    if ($Type -eq 'REG_QWORD') {
        $ok = (Test-IntegerValue -Value $Data) -and $Data -ge 0 -and [decimal]$Data -le [decimal]::Parse('18446744073709551615')
        Assert-Request -Condition $ok -Message "field 'data' must be an integer from 0 to 18446744073709551615 for REG_QWORD"
        $bytes = [System.BitConverter]::GetBytes([uint64][decimal]$Data)
        return @{ Data = [System.BitConverter]::ToInt64($bytes, 0); Kind = [Microsoft.Win32.RegistryValueKind]::QWord }
    }
    Assert-Request -Condition ($Type -eq 'REG_BINARY') -Message "field 'type' must be one of $($WriteRegTypes -join ', ')"
    $hexOk = ($Data -is [string]) -and ($Data -cmatch '^([0-9a-f]{2})*$')
    Assert-Request -Condition $hexOk -Message "field 'data' must be lowercase hex, two digits per byte, for REG_BINARY"
    $bytes = New-Object -TypeName 'byte[]' -ArgumentList ($Data.Length / 2)
    for ($index = 0; $index -lt $bytes.Length; $index++) {
        $bytes[$index] = [System.Convert]::ToByte($Data.Substring(2 * $index, 2), 16)
    }
    return @{ Data = $bytes; Kind = [Microsoft.Win32.RegistryValueKind]::Binary }
}
# endregion

# region: backup
function Get-EntriesField {
    # A backup's entries: a list of objects, each with kind 'reg' (key, name) or 'service' (name).
    param([string]$Name, $Value)
    Assert-Request -Condition ($null -ne $Value) -Message "field '$Name' is required"
    Assert-Request -Condition ($Value -is [array]) -Message "field '$Name' must be a list of objects"
    Assert-Request -Condition ($Value.Count -le 1000) -Message "field '$Name' must hold at most 1000 entries"
    foreach ($entry in $Value) {
        Assert-Request -Condition ($entry -is [System.Management.Automation.PSCustomObject]) -Message "field '$Name' must be a list of objects"
        $kind = $entry.PSObject.Properties['kind']
        $kindOk = ($null -ne $kind) -and (@('reg', 'service') -ccontains [string]$kind.Value)
        Assert-Request -Condition $kindOk -Message "field '$Name': each entry needs kind 'reg' or 'service'"
        $target = $entry.PSObject.Properties['key']
        if ([string]$kind.Value -eq 'service') {
            $target = $entry.PSObject.Properties['name']
        }
        Assert-Request -Condition (($null -ne $target) -and ($target.Value -is [string])) -Message "field '$Name': a reg entry needs a key, a service entry a name"
    }
    return ,$Value
}

function Get-EntryView {
    param($Entry)
    $view = $Entry.PSObject.Properties['view']
    if ($null -ne $view -and [string]$view.Value -eq '32') {
        return '32'
    }
    return '64'
}

function Get-MissingKeys {
    # The registry keys of the reg entries that do not exist now, each once, parents first.
    param($Entries)
    $seen = @{}
    $missing = New-Object -TypeName System.Collections.Generic.List[object]
    foreach ($entry in $Entries) {
        if ([string]$entry.kind -ne 'reg') {
            continue
        }
        $view = Get-EntryView -Entry $entry
        $chain = New-Object -TypeName System.Collections.Generic.List[string]
        $key = [string]$entry.key
        while ($key.Contains('\') -and -not (Test-RegistryKey -Key $key -View $view)) {
            $chain.Insert(0, $key)
            $key = $key.Substring(0, $key.LastIndexOf('\'))
        }
        foreach ($item in $chain) {
            $marker = '{0}|{1}' -f $view, $item.ToUpperInvariant()
            if (-not $seen.ContainsKey($marker)) {
                $seen[$marker] = $true
                $missing.Add(@{ key = $item; view = $view })
            }
        }
    }
    return ,$missing.ToArray()
}

function Get-BackupPath {
    param([string]$Id)
    return Join-Path -Path $BackupFolder -ChildPath ('{0}.json' -f $Id)
}

function Get-UtcStamp {
    return [DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ss.fffZ', [System.Globalization.CultureInfo]::InvariantCulture)
}

function Write-BackupFile {
    # Written to <path>.tmp first and moved into place: a backup file is whole or absent.
    param([string]$Path, $Document)
    $null = [System.IO.Directory]::CreateDirectory($BackupFolder)
    $json = ConvertTo-Json -InputObject $Document -Depth 20 -Compress
    $temporary = '{0}.tmp' -f $Path
    $encoding = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false
    [System.IO.File]::WriteAllText($temporary, $json, $encoding)
    [System.IO.File]::Move($temporary, $Path)
}

function Read-BackupFile {
    param([string]$Path)
    try {
        $document = ConvertFrom-Json -InputObject ([System.IO.File]::ReadAllText($Path, [System.Text.Encoding]::UTF8))
    }
    catch {
        throw (New-OpException -Kind 'failed' -Message "the backup file $Path is not valid JSON: $(Get-ErrorMessage -Exception $_.Exception)")
    }
    return $document
}

function Get-BackupDocuments {
    # (path, document) of every backup, oldest first (by saved_at, then id).
    $found = New-Object -TypeName System.Collections.Generic.List[object]
    if ([System.IO.Directory]::Exists($BackupFolder)) {
        foreach ($path in [System.IO.Directory]::GetFiles($BackupFolder, '*.json')) {
            $found.Add([System.Tuple]::Create([string]$path, (Read-BackupFile -Path $path)))
        }
    }
    $sorted = @($found | Sort-Object -Property @{ Expression = { [string]$_.Item2.saved_at } }, @{ Expression = { [string]$_.Item2.id } })
    return ,$sorted
}
# endregion

# region: service_write
function Get-ServiceRecord {
    # The Win32_Service of one service name; not_found when there is none.
    param([string]$Name)
    Assert-Request -Condition ($Name -match '^[A-Za-z0-9 _.$-]{1,256}$') -Message "field 'name' must be a service name"
    $filter = "Name = '{0}'" -f $Name
    $service = Get-CimInstance -ClassName Win32_Service -Filter $filter -OperationTimeoutSec 60
    if ($null -eq $service) {
        throw (New-OpException -Kind 'not_found' -Message "no service is named '$Name'")
    }
    return $service
}

function Get-AllowedService {
    param([string]$Name)
    $service = Get-ServiceRecord -Name $Name
    $allowed = ($WriteServiceNames -contains [string]$service.Name) -or ($WriteServiceDisplayNames -contains [string]$service.DisplayName)
    Assert-Allowed -Condition $allowed -Message "service '$($service.Name)' ($($service.DisplayName)) is not one this collection manages (the runner's write allow-list)"
    return $service
}

function ConvertTo-StartupType {
    param([string]$Mode)
    if ($Mode -eq 'auto') {
        return 'Automatic'
    }
    if ($Mode -eq 'disabled') {
        return 'Disabled'
    }
    return 'Manual'
}

function Wait-ServiceStatus {
    # Polls until the service reaches $Wanted; fails as soon as it settles in $Other instead.
    param($Controller, $Wanted, $Other, [DateTime]$Deadline)
    do {
        Start-Sleep -Milliseconds 250
        $Controller.Refresh()
        $status = $Controller.Status
    } while ($status -ne $Wanted -and $status -ne $Other -and [DateTime]::UtcNow -lt $Deadline)
    if ($status -ne $Wanted) {
        throw (New-OpException -Kind 'failed' -Message ("service {0} is {1}, not {2}" -f $Controller.ServiceName, $status, $Wanted))
    }
}

function Set-ServiceState {
    param([string]$Name, [string]$State, [int]$TimeoutMs)
    # Get-Service gives the ServiceController (and loads System.ServiceProcess for the types below).
    $controller = Get-Service -Name $Name
    $running = [System.ServiceProcess.ServiceControllerStatus]::Running
    $stopped = [System.ServiceProcess.ServiceControllerStatus]::Stopped
    $deadline = [DateTime]::UtcNow.AddMilliseconds($TimeoutMs)
    try {
        if (($State -eq 'stopped' -or $State -eq 'restarted') -and $controller.Status -ne $stopped) {
            $controller.Stop()
            Wait-ServiceStatus -Controller $controller -Wanted $stopped -Other $running -Deadline $deadline
        }
        $controller.Refresh()
        if (($State -eq 'started' -or $State -eq 'restarted') -and $controller.Status -ne $running) {
            $controller.Start()
            Wait-ServiceStatus -Controller $controller -Wanted $running -Other $stopped -Deadline $deadline
        }
    }
    finally {
        $controller.Close()
    }
}

function Wait-PortListener {
    # Polls (every 250 ms) until something listens on one of $Ports or $WaitMs has passed; $true when it does.
    param([int[]]$Ports, [int]$WaitMs)
    $deadline = [DateTime]::UtcNow.AddMilliseconds($WaitMs)
    while ($true) {
        foreach ($listener in (Get-AllListeners)) {
            if ($Ports -contains [int]$listener.port) {
                return $true
            }
        }
        if ([DateTime]::UtcNow -ge $deadline) {
            return $false
        }
        Start-Sleep -Milliseconds 250
    }
}
# endregion

# region: task
function Get-SessionProcessIds {
    # Ids of the processes of one session whose image is $Image.
    param([string]$Image, [int]$Session)
    $ids = New-Object -TypeName System.Collections.Generic.List[int]
    $filter = 'SessionId = {0}' -f $Session
    foreach ($item in @(Get-CimInstance -ClassName Win32_Process -Filter $filter -Property @('ProcessId', 'ExecutablePath') -OperationTimeoutSec 60)) {
        if ([string]::Equals([string]$item.ExecutablePath, $Image, [System.StringComparison]::OrdinalIgnoreCase)) {
            $ids.Add([int]$item.ProcessId)
        }
    }
    return ,$ids.ToArray()
}

function Wait-SessionProcess {
    # The id of a process of $Image in $Session that was not there before, or $null after $WaitMs.
    param([string]$Image, [int]$Session, [int[]]$Before, [int]$WaitMs)
    $deadline = [DateTime]::UtcNow.AddMilliseconds($WaitMs)
    while ($true) {
        foreach ($processId in (Get-SessionProcessIds -Image $Image -Session $Session)) {
            if ($Before -notcontains $processId) {
                return $processId
            }
        }
        if ([DateTime]::UtcNow -ge $deadline) {
            return $null
        }
        Start-Sleep -Milliseconds 250
    }
}

function New-OneOffTaskAction {
    param([string]$Command, [string]$Arguments)
    if ([string]::IsNullOrEmpty($Arguments)) {
        return New-ScheduledTaskAction -Execute $Command
    }
    return New-ScheduledTaskAction -Execute $Command -Argument $Arguments
}

function Remove-OneOffTask {
    # Unregisters the task; $true when no task of that name is left.
    param([string]$Name)
    try {
        Unregister-ScheduledTask -TaskName $Name -TaskPath '\' -Confirm:$false
    }
    catch {
        $null = $_
    }
    $left = Get-ScheduledTask -TaskName $Name -TaskPath '\' -ErrorAction SilentlyContinue
    return ($null -eq $left)
}
# endregion

# ---------------------------------------------------------------------------------------------
# The operations. Each takes the request as a hashtable ($Req) and returns one hashtable
# literal with exactly the reply fields.

$Operations = @{
    # region: op:reg_read
    'reg_read' = {
        param($Req)
        $key = Get-StringField -Name 'key' -Value $Req.key -Required $true -Default ''
        $view = Get-ChoiceField -Name 'view' -Value $Req.view -Choices @('64', '32') -Default '64'
        $depth = Get-IntField -Name 'depth' -Value $Req.depth -Minimum 0 -Maximum 4 -Default 0
        $names = Get-ListField -Name 'names' -Value $Req.names -Required $false -ItemType 'string'
        $handle = Open-RegistryKey -Key $key -View $view
        if ($null -eq $handle) {
            return @{ ok = $true; exists = $false; values = @{}; subkeys = @{} }
        }
        try {
            $node = Read-RegistryNode -Key $handle -Depth $depth -Names $names
        }
        finally {
            $handle.Close()
        }
        return @{ ok = $true; exists = $true; values = $node['values']; subkeys = $node['subkeys'] }
    }
    # endregion

    # region: op:process_list
    'process_list' = {
        param($Req)
        $processes = New-Object -TypeName System.Collections.Generic.List[object]
        $imageMap = Get-ProcessImageMap
        foreach ($process in (Get-AllProcesses)) {
            $image = Get-ProcessImage -Process $process -ImageMap $imageMap
            $name = [string]$process.ProcessName
            if ($null -ne $image) {
                $name = [System.IO.Path]::GetFileName($image)
            }
            $processes.Add(@{ pid = [int]$process.Id; name = $name; image = $image; session = [int]$process.SessionId; user = (Get-ProcessUser -Process $process); version = (Get-FileVersion -Path $image) })
        }
        return @{ ok = $true; processes = $processes.ToArray() }
    }
    # endregion

    # region: op:service_query
    'service_query' = {
        param($Req)
        $names = Get-ListField -Name 'names' -Value $Req.names -Required $false -ItemType 'string'
        $displayNames = Get-ListField -Name 'display_names' -Value $Req.display_names -Required $false -ItemType 'string'
        $everything = ($null -eq $names) -and ($null -eq $displayNames)
        $services = New-Object -TypeName System.Collections.Generic.List[object]
        foreach ($service in @(Get-CimInstance -ClassName Win32_Service -OperationTimeoutSec 60)) {
            $byName = ($null -ne $names) -and ($names -contains [string]$service.Name)
            $byDisplayName = ($null -ne $displayNames) -and ($displayNames -contains [string]$service.DisplayName)
            if (-not ($everything -or $byName -or $byDisplayName)) {
                continue
            }
            $image = $null
            if (-not [string]::IsNullOrEmpty($service.PathName)) {
                $image = [string]$service.PathName
            }
            $services.Add(@{ name = [string]$service.Name; display_name = [string]$service.DisplayName; state = (ConvertTo-ServiceState -State ([string]$service.State)); start_mode = ([string]$service.StartMode).ToLowerInvariant(); image = $image; pid = [int]$service.ProcessId })
        }
        return @{ ok = $true; services = $services.ToArray() }
    }
    # endregion

    # region: op:tcp_listeners
    'tcp_listeners' = {
        param($Req)
        $ports = Get-ListField -Name 'ports' -Value $Req.ports -Required $false -ItemType 'int'
        $listeners = New-Object -TypeName System.Collections.Generic.List[object]
        foreach ($listener in (Get-AllListeners)) {
            if (($null -eq $ports) -or ($ports -contains $listener['port'])) {
                $listeners.Add($listener)
            }
        }
        return @{ ok = $true; listeners = $listeners.ToArray() }
    }
    # endregion

    # region: op:http_get
    'http_get' = {
        param($Req)
        $url = Get-StringField -Name 'url' -Value $Req.url -Required $true -Default ''
        $timeout = Get-IntField -Name 'timeout_ms' -Value $Req.timeout_ms -Minimum 100 -Maximum 30000 -Default 2000
        $uri = Test-LoopbackUrl -Url $url
        if ($uri.Scheme -eq 'https') {
            [System.Net.ServicePointManager]::SecurityProtocol = [System.Net.ServicePointManager]::SecurityProtocol -bor [System.Net.SecurityProtocolType]::Tls12
        }
        $webRequest = [System.Net.HttpWebRequest][System.Net.WebRequest]::Create($uri)
        $webRequest.Method = 'GET'
        $webRequest.Timeout = $timeout
        $webRequest.ReadWriteTimeout = $timeout
        $webRequest.AllowAutoRedirect = $false
        $webRequest.KeepAlive = $false
        $webRequest.Proxy = $null
        $webRequest.UseDefaultCredentials = $true
        $response = $null
        try {
            $response = $webRequest.GetResponse()
        }
        catch {
            $webError = Get-WebError -Exception $_.Exception
            if ($null -eq $webError -or $null -eq $webError.Response) {
                return @{ ok = $true; status = $null; body = $null; error = (Get-NoAnswerReason -WebError $webError) }
            }
            $response = $webError.Response
        }
        try {
            $status = [int]$response.StatusCode
            $body = Read-ResponseBody -Response $response
        }
        finally {
            $response.Close()
        }
        return @{ ok = $true; status = $status; body = $body; error = $null }
    }
    # endregion

    # region: op:file_info
    'file_info' = {
        param($Req)
        $paths = Get-ListField -Name 'paths' -Value $Req.paths -Required $true -ItemType 'string'
        $files = New-Object -TypeName System.Collections.Generic.List[object]
        foreach ($path in $paths) {
            $absolute = $path -match '^([A-Za-z]:\\|\\\\[^\\]+\\[^\\]+)'
            Assert-Request -Condition $absolute -Message "field 'paths' must hold absolute paths, not '$path'"
            $isFile = [System.IO.File]::Exists($path)
            $exists = $isFile -or [System.IO.Directory]::Exists($path)
            $version = $null
            if ($isFile) {
                $version = Get-FileVersion -Path $path
            }
            $files.Add(@{ path = $path; exists = $exists; version = $version })
        }
        return @{ ok = $true; files = $files.ToArray() }
    }
    # endregion

    # region: op:session_list
    'session_list' = {
        param($Req)
        $sessions = New-Object -TypeName System.Collections.Generic.List[object]
        foreach ($session in (Get-WtsSessions)) {
            if ($session.Id -eq 0 -or [string]::IsNullOrEmpty($session.User)) {
                continue
            }
            $user = [string]$session.User
            if (-not [string]::IsNullOrEmpty($session.Domain)) {
                $user = '{0}\{1}' -f $session.Domain, $session.User
            }
            $sessions.Add(@{ id = [int]$session.Id; user = $user; sid = (Resolve-AccountSid -Domain $session.Domain -User $session.User); state = (ConvertTo-SessionState -State $session.State) })
        }
        return @{ ok = $true; sessions = $sessions.ToArray() }
    }
    # endregion

    # region: op:os_info
    'os_info' = {
        param($Req)
        $os = Get-CimInstance -ClassName Win32_OperatingSystem -OperationTimeoutSec 60
        $product = ([string]$os.Caption).Trim()
        if ($product.StartsWith('Microsoft ')) {
            $product = $product.Substring(10)
        }
        $computerName = [string]$os.CSName
        if ([string]::IsNullOrEmpty($computerName)) {
            $computerName = [string]$env:COMPUTERNAME
        }
        return @{ ok = $true; product = $product; version = [string]$os.Version; computer_name = $computerName; emulated = $false }
    }
    # endregion

    # region: op:user_hives_read
    'user_hives_read' = {
        param($Req)
        $paths = Get-PathDepthField -Name 'paths' -Value $Req.paths
        $includeOffline = Get-BoolField -Name 'include_offline' -Value $Req.include_offline -Default $false
        $profiles = New-Object -TypeName System.Collections.Generic.List[object]
        $table = Get-UserProfileTable
        foreach ($sid in @($table.Keys | Sort-Object)) {
            $loaded = Test-UserHiveLoaded -Sid $sid
            $mount = $null
            $problem = $null
            $keys = @{}
            if ($loaded) {
                $keys = Read-UserKeys -Root ('HKU\{0}' -f $sid) -Paths $paths
            }
            elseif ($includeOffline -and $paths.Count -gt 0) {
                $offline = Read-OfflineHive -ProfilePath $table[$sid] -Paths $paths
                $mount = $offline['Mount']
                $keys = $offline['Keys']
                $problem = $offline['Error']
            }
            $profiles.Add(@{ sid = $sid; user = (Resolve-SidAccount -Sid $sid); path = $table[$sid]; loaded = $loaded; mounted_as = $mount; error = $problem; keys = $keys })
        }
        return @{ ok = $true; profiles = $profiles.ToArray() }
    }
    # endregion

    # region: op:gpo_registry_settings
    'gpo_registry_settings' = {
        param($Req)
        $prefixes = Get-ListField -Name 'key_prefixes' -Value $Req.key_prefixes -Required $false -ItemType 'string'
        $settings = New-Object -TypeName System.Collections.Generic.List[object]
        $errors = New-Object -TypeName System.Collections.Generic.List[object]
        $wanted = ($null -eq $prefixes) -or ($prefixes.Count -gt 0)
        if ($wanted) {
            $machineNames = Get-RsopGpoNames -Namespace 'root\rsop\computer'
            foreach ($setting in (Get-RsopRegistrySettings -Namespace 'root\rsop\computer' -Prefixes $prefixes)) {
                $settings.Add(@{ scope = 'machine'; sid = $null; key = ('HKLM\{0}' -f ([string]$setting.registryKey).Trim('\')); name = [string]$setting.valueName; gpo = (Get-GpoName -Names $machineNames -Id ([string]$setting.GPOID)) })
            }
            foreach ($sid in (Get-RsopUserSids)) {
                $namespace = 'root\rsop\user\{0}' -f $sid.Replace('-', '_')
                try {
                    $userNames = Get-RsopGpoNames -Namespace $namespace
                    $userSettings = Get-RsopRegistrySettings -Namespace $namespace -Prefixes $prefixes
                }
                catch {
                    $errors.Add(('{0}: {1}' -f $namespace, (Get-ErrorMessage -Exception $_.Exception)))
                    continue
                }
                foreach ($setting in $userSettings) {
                    $settings.Add(@{ scope = 'user'; sid = $sid; key = ('HKU\{0}\{1}' -f $sid, ([string]$setting.registryKey).Trim('\')); name = [string]$setting.valueName; gpo = (Get-GpoName -Names $userNames -Id ([string]$setting.GPOID)) })
                }
            }
        }
        return @{ ok = $true; settings = $settings.ToArray(); errors = $errors.ToArray() }
    }
    # endregion

    # region: op:reg_write
    'reg_write' = {
        param($Req)
        $key = Get-StringField -Name 'key' -Value $Req.key -Required $true -Default ''
        $view = Get-ChoiceField -Name 'view' -Value $Req.view -Choices @('64', '32') -Default '64'
        $name = Get-StringField -Name 'name' -Value $Req.name -Required $true -Default ''
        $type = Get-ChoiceField -Name 'type' -Value $Req.type -Choices $WriteRegTypes -Default ''
        Assert-Request -Condition ($type -ne '') -Message "field 'type' is required"
        Assert-WriteKey -Key $key -ForKeyDelete $false
        Assert-ValueName -Name $name
        $value = ConvertTo-WriteValue -Type $type -Data $Req.data
        $existed = Test-RegistryKey -Key $key -View $view
        $handle = Open-KeyForWrite -Key $key -View $view -Create $true
        $previous = $null
        try {
            if ($handle.GetValueNames() -contains $name) {
                $previous = Read-RegistryValue -Key $handle -Name $name
            }
            $handle.SetValue($name, $value['Data'], $value['Kind'])
        }
        finally {
            $handle.Close()
        }
        return @{ ok = $true; previous = $previous; created_key = (-not $existed) }
    }
    # endregion

    # region: op:reg_delete
    'reg_delete' = {
        param($Req)
        $key = Get-StringField -Name 'key' -Value $Req.key -Required $true -Default ''
        $view = Get-ChoiceField -Name 'view' -Value $Req.view -Choices @('64', '32') -Default '64'
        $name = Get-StringField -Name 'name' -Value $Req.name -Required $true -Default ''
        Assert-WriteKey -Key $key -ForKeyDelete $false
        Assert-ValueName -Name $name
        $existed = $false
        $handle = Open-KeyForWrite -Key $key -View $view -Create $false
        if ($null -ne $handle) {
            try {
                if ($handle.GetValueNames() -contains $name) {
                    $handle.DeleteValue($name)
                    $existed = $true
                }
            }
            finally {
                $handle.Close()
            }
        }
        return @{ ok = $true; existed = $existed }
    }
    # endregion

    # region: op:reg_delete_key
    'reg_delete_key' = {
        param($Req)
        $key = Get-StringField -Name 'key' -Value $Req.key -Required $true -Default ''
        $view = Get-ChoiceField -Name 'view' -Value $Req.view -Choices @('64', '32') -Default '64'
        Assert-WriteKey -Key $key -ForKeyDelete $true
        $deleted = $false
        $reason = 'does not exist'
        $handle = Open-RegistryKey -Key $key -View $view
        if ($null -ne $handle) {
            try {
                $empty = ($handle.SubKeyCount -eq 0) -and ($handle.ValueCount -eq 0)
            }
            finally {
                $handle.Close()
            }
            $reason = 'not empty'
            if ($empty) {
                $cut = $key.LastIndexOf('\')
                $parent = Open-KeyForWrite -Key $key.Substring(0, $cut) -View $view -Create $false
                try {
                    $parent.DeleteSubKey($key.Substring($cut + 1), $true)
                }
                finally {
                    $parent.Close()
                }
                $deleted = $true
                $reason = $null
            }
        }
        return @{ ok = $true; deleted = $deleted; reason = $reason }
    }
    # endregion

    # region: op:backup_save
    'backup_save' = {
        param($Req)
        $id = Get-StringField -Name 'id' -Value $Req.id -Required $true -Default ''
        Assert-Allowed -Condition ($id -cmatch $BackupIdPattern) -Message "backup id '$id' must be 1 to 80 letters, digits, '_' or '-'"
        $entries = Get-EntriesField -Name 'entries' -Value $Req.entries
        $path = Get-BackupPath -Id $id
        Assert-Request -Condition (-not [System.IO.File]::Exists($path)) -Message "a backup with the id '$id' exists already"
        $missing = Get-MissingKeys -Entries $entries
        $document = [ordered]@{ id = $id; saved_at = (Get-UtcStamp); entries = $entries; missing_keys = $missing }
        Write-BackupFile -Path $path -Document $document
        return @{ ok = $true; id = $id; path = $path; missing_keys = $missing }
    }
    # endregion

    # region: op:backup_load
    'backup_load' = {
        param($Req)
        $id = Get-StringField -Name 'id' -Value $Req.id -Required $true -Default ''
        $idOk = ($id -ceq 'latest') -or ($id -cmatch $BackupIdPattern)
        Assert-Allowed -Condition $idOk -Message "backup id '$id' must be 'latest' or 1 to 80 letters, digits, '_' or '-'"
        $path = Get-BackupPath -Id $id
        if ($id -ceq 'latest') {
            $all = Get-BackupDocuments
            if ($all.Count -eq 0) {
                throw (New-OpException -Kind 'not_found' -Message "no backup is saved on this host ($BackupFolder)")
            }
            $path = $all[$all.Count - 1].Item1
        }
        if (-not [System.IO.File]::Exists($path)) {
            throw (New-OpException -Kind 'not_found' -Message "no backup '$id' on this host ($path)")
        }
        return @{ ok = $true; backup = (Read-BackupFile -Path $path) }
    }
    # endregion

    # region: op:backup_list
    'backup_list' = {
        param($Req)
        $backups = New-Object -TypeName System.Collections.Generic.List[object]
        foreach ($pair in (Get-BackupDocuments)) {
            $backups.Add(@{ id = [string]$pair.Item2.id; saved_at = [string]$pair.Item2.saved_at; entries = @($pair.Item2.entries).Count; path = $pair.Item1 })
        }
        return @{ ok = $true; backups = $backups.ToArray() }
    }
    # endregion

    # region: op:service_set
    'service_set' = {
        param($Req)
        $name = Get-StringField -Name 'name' -Value $Req.name -Required $true -Default ''
        $startMode = Get-ChoiceField -Name 'start_mode' -Value $Req.start_mode -Choices @('auto', 'manual', 'disabled') -Default ''
        $state = Get-ChoiceField -Name 'state' -Value $Req.state -Choices @('started', 'stopped', 'restarted') -Default ''
        Assert-Request -Condition ($state -ne '') -Message "field 'state' is required"
        $timeout = Get-IntField -Name 'timeout_ms' -Value $Req.timeout_ms -Minimum 1000 -Maximum 120000 -Default 30000
        $listenPorts = Get-ListField -Name 'listen_ports' -Value $Req.listen_ports -Required $false -ItemType 'int'
        $listenWait = Get-IntField -Name 'listen_wait_ms' -Value $Req.listen_wait_ms -Minimum 0 -Maximum 120000 -Default 0
        if ($null -ne $listenPorts) {
            foreach ($port in $listenPorts) {
                Assert-Request -Condition ($port -ge 1 -and $port -le 65535) -Message "field 'listen_ports' must hold ports from 1 to 65535"
            }
        }
        $service = Get-AllowedService -Name $name
        $previousState = ConvertTo-ServiceState -State ([string]$service.State)
        $previousStartMode = ([string]$service.StartMode).ToLowerInvariant()
        if ($startMode -ne '' -and $startMode -ne $previousStartMode) {
            Set-Service -Name ([string]$service.Name) -StartupType (ConvertTo-StartupType -Mode $startMode)
        }
        Set-ServiceState -Name ([string]$service.Name) -State $state -TimeoutMs $timeout
        if ($state -ne 'stopped' -and $null -ne $listenPorts -and $listenPorts.Count -gt 0 -and $listenWait -gt 0) {
            $null = Wait-PortListener -Ports $listenPorts -WaitMs $listenWait
        }
        $after = Get-ServiceRecord -Name ([string]$service.Name)
        return @{ ok = $true; name = [string]$after.Name; display_name = [string]$after.DisplayName; state = (ConvertTo-ServiceState -State ([string]$after.State)); start_mode = ([string]$after.StartMode).ToLowerInvariant(); previous_state = $previousState; previous_start_mode = $previousStartMode }
    }
    # endregion

    # region: op:task_run
    'task_run' = {
        param($Req)
        $name = Get-StringField -Name 'name' -Value $Req.name -Required $true -Default ''
        $user = Get-StringField -Name 'user' -Value $Req.user -Required $true -Default ''
        $session = Get-IntField -Name 'session' -Value $Req.session -Minimum 1 -Maximum 65535 -Default 0
        Assert-Request -Condition ($session -ge 1) -Message "field 'session' is required"
        $command = Get-StringField -Name 'command' -Value $Req.command -Required $true -Default ''
        $arguments = Get-StringField -Name 'arguments' -Value $Req.arguments -Required $false -Default ''
        $waitMs = Get-IntField -Name 'wait_ms' -Value $Req.wait_ms -Minimum 0 -Maximum 120000 -Default 15000
        Assert-Allowed -Condition ($name -cmatch $TaskNamePattern) -Message "task name '$name' must be nhs_cm_ followed by 1 to 64 letters, digits, '_' or '-'"
        $argumentsOk = ($arguments.Length -le 512) -and ($arguments -cnotmatch '[\x00-\x1F]')
        Assert-Allowed -Condition $argumentsOk -Message 'the arguments must be at most 512 characters without control characters'
        $problem = Test-ProgramPath -Path $command
        Assert-Allowed -Condition ($null -eq $problem) -Message "command '$command' $problem"
        if (-not [System.IO.File]::Exists($command)) {
            throw (New-OpException -Kind 'not_found' -Message "no program at $command")
        }
        $before = Get-SessionProcessIds -Image $command -Session $session
        $action = New-OneOffTaskAction -Command $command -Arguments $arguments
        $principal = New-ScheduledTaskPrincipal -UserId $user -LogonType Interactive -RunLevel Limited
        $settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries -ExecutionTimeLimit ([TimeSpan]::Zero) -MultipleInstances IgnoreNew
        $registered = $false
        $deleted = $true
        $processId = $null
        $lastResult = $null
        try {
            $null = Register-ScheduledTask -TaskName $name -TaskPath '\' -Action $action -Principal $principal -Settings $settings
            $registered = $true
            Start-ScheduledTask -TaskName $name -TaskPath '\'
            $processId = Wait-SessionProcess -Image $command -Session $session -Before $before -WaitMs $waitMs
            $lastResult = [long](Get-ScheduledTaskInfo -TaskName $name -TaskPath '\').LastTaskResult
        }
        finally {
            if ($registered) {
                $deleted = Remove-OneOffTask -Name $name
            }
        }
        return @{ ok = $true; started = ($null -ne $processId); pid = $processId; last_result = $lastResult; deleted = $deleted }
    }
    # endregion

    # region: op:process_stop
    'process_stop' = {
        param($Req)
        $processId = Get-IntField -Name 'pid' -Value $Req.pid -Minimum 1 -Maximum 2147483647 -Default 0
        Assert-Request -Condition ($processId -ge 1) -Message "field 'pid' is required"
        $image = Get-StringField -Name 'image' -Value $Req.image -Required $true -Default ''
        $problem = Test-ProgramPath -Path $image
        Assert-Allowed -Condition ($null -eq $problem) -Message "image '$image' $problem"
        $filter = 'ProcessId = {0}' -f $processId
        $process = Get-CimInstance -ClassName Win32_Process -Filter $filter -OperationTimeoutSec 60
        $found = ($null -ne $process) -and [string]::Equals([string]$process.ExecutablePath, $image, [System.StringComparison]::OrdinalIgnoreCase)
        if (-not $found) {
            return @{ ok = $true; found = $false; stopped = $false }
        }
        Assert-Allowed -Condition ([int]$process.SessionId -ge 1) -Message "process $processId runs in session 0; only processes of interactive sessions may be stopped"
        Stop-Process -Id $processId -Force
        Wait-Process -Id $processId -Timeout 10 -ErrorAction SilentlyContinue
        $left = Get-Process -Id $processId -ErrorAction SilentlyContinue
        return @{ ok = $true; found = $true; stopped = ($null -eq $left) }
    }
    # endregion

    # region: op:file_list
    'file_list' = {
        param($Req)
        $dir = Get-StringField -Name 'dir' -Value $Req.dir -Required $true -Default ''
        $pattern = Get-StringField -Name 'pattern' -Value $Req.pattern -Required $false -Default '*.exe'
        Assert-Request -Condition ($dir -match '^([A-Za-z]:\\|\\\\[^\\]+\\[^\\]+)') -Message "field 'dir' must be an absolute path"
        Assert-Request -Condition ($pattern -match '^[A-Za-z0-9 _.*?-]{1,64}$') -Message "field 'pattern' must be a file-name wildcard of letters, digits, space, '_', '.', '-', '*' and '?'"
        $files = New-Object -TypeName System.Collections.Generic.List[object]
        if ([System.IO.Directory]::Exists($dir)) {
            foreach ($path in @([System.IO.Directory]::GetFiles($dir, $pattern) | Sort-Object)) {
                if ([System.IO.Path]::GetFileName($path) -like $pattern) {
                    $files.Add(@{ path = [string]$path; version = (Get-FileVersion -Path $path) })
                }
            }
        }
        return @{ ok = $true; files = $files.ToArray() }
    }
    # endregion
}

# ---------------------------------------------------------------------------------------------
# Dispatch and reply
# The request fields each operation accepts (OPERATIONS in _protocol.py; checked by a test).
# Any other field is refused with invalid_request.

# The write operations: with write_errors 'stop', each one after a failed one is skipped.
$WriteOperations = @('reg_write', 'reg_delete', 'reg_delete_key', 'backup_save', 'service_set', 'task_run', 'process_stop')

$RequestFields = @{
    'reg_read' = @('key', 'view', 'depth', 'names')
    'process_list' = @()
    'service_query' = @('names', 'display_names')
    'tcp_listeners' = @('ports')
    'http_get' = @('url', 'timeout_ms')
    'file_info' = @('paths')
    'session_list' = @()
    'os_info' = @()
    'user_hives_read' = @('paths', 'include_offline')
    'gpo_registry_settings' = @('key_prefixes')
    'reg_write' = @('key', 'view', 'name', 'type', 'data')
    'reg_delete' = @('key', 'view', 'name')
    'reg_delete_key' = @('key', 'view')
    'backup_save' = @('id', 'entries')
    'backup_load' = @('id')
    'backup_list' = @()
    'service_set' = @('name', 'start_mode', 'state', 'timeout_ms', 'listen_ports', 'listen_wait_ms')
    'task_run' = @('name', 'user', 'session', 'command', 'arguments', 'wait_ms')
    'process_stop' = @('pid', 'image')
    'file_list' = @('dir', 'pattern')
}

function ConvertTo-RequestTable {
    param($Op)
    $table = @{}
    foreach ($property in $Op.PSObject.Properties) {
        $table[$property.Name] = $property.Value
    }
    return $table
}

function Invoke-Operation {
    param($Op)
    if ($null -eq $Op -or $Op -isnot [System.Management.Automation.PSCustomObject]) {
        return @{ ok = $false; error = 'invalid_request'; message = 'an operation must be a JSON object' }
    }
    $request = ConvertTo-RequestTable -Op $Op
    $name = [string]$request['op']
    if (-not ($Operations.Keys -ccontains $name)) {
        return @{ ok = $false; error = 'invalid_request'; message = "unknown op '$name'" }
    }
    foreach ($field in @($request.Keys)) {
        if ($field -cne 'op' -and -not ($RequestFields[$name] -ccontains $field)) {
            return @{ ok = $false; error = 'invalid_request'; message = "${name}: unknown field '$field'" }
        }
    }
    try {
        $output = @(& $Operations[$name] $request)
    }
    catch {
        return ConvertTo-ErrorResult -ErrorRecord $_
    }
    if ($output.Count -ne 1 -or $output[0] -isnot [System.Collections.IDictionary]) {
        return @{ ok = $false; error = 'failed'; message = "runner bug: op '$name' produced $($output.Count) outputs" }
    }
    return $output[0]
}

function ConvertTo-AsciiJson {
    param($Value)
    $json = ConvertTo-Json -InputObject $Value -Compress -Depth 20
    return [regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
}

function Write-Reply {
    # With $Compress (request field compress: true) the line is NHS-CM-GZIP: and the JSON gzipped, in base64.
    param($Reply, [bool]$Compress)
    $line = ConvertTo-AsciiJson -Value $Reply
    if ($Compress) {
        $bytes = [System.Text.Encoding]::ASCII.GetBytes($line)
        $buffer = New-Object -TypeName System.IO.MemoryStream
        $gzip = New-Object -TypeName System.IO.Compression.GZipStream -ArgumentList $buffer, ([System.IO.Compression.CompressionMode]::Compress)
        $gzip.Write($bytes, 0, $bytes.Length)
        $gzip.Close()
        $line = 'NHS-CM-GZIP:' + [System.Convert]::ToBase64String($buffer.ToArray())
    }
    if ($Host.Name -eq 'ConsoleHost') {
        [Console]::Out.Write($line)
        [Console]::Out.Flush()
    }
    else {
        # A remote runspace (psrp connection) has no console; its pipeline output is the reply.
        Write-Output $line
    }
}

function Read-Request {
    param([string]$Json)
    if ([string]::IsNullOrWhiteSpace($Json)) {
        throw (New-OpException -Kind 'invalid_request' -Message 'the request is empty')
    }
    try {
        $request = ConvertFrom-Json -InputObject $Json
    }
    catch {
        throw (New-OpException -Kind 'invalid_request' -Message "the request is not valid JSON: $(Get-ErrorMessage -Exception $_.Exception)")
    }
    if ($request -isnot [System.Management.Automation.PSCustomObject]) {
        throw (New-OpException -Kind 'invalid_request' -Message 'the request must be a JSON object')
    }
    $protocolProperty = $request.PSObject.Properties['protocol']
    if ($null -eq $protocolProperty -or $protocolProperty.Value -ne $RunnerProtocol) {
        throw (New-OpException -Kind 'invalid_request' -Message "the request must have protocol $RunnerProtocol")
    }
    $opsProperty = $request.PSObject.Properties['ops']
    if ($null -eq $opsProperty -or $opsProperty.Value -isnot [array]) {
        throw (New-OpException -Kind 'invalid_request' -Message "the request must have a list 'ops'")
    }
    # compress true: the reply is sent gzipped, in base64 (Write-Reply).
    $compress = $false
    $compressProperty = $request.PSObject.Properties['compress']
    if ($null -ne $compressProperty) {
        if ($compressProperty.Value -isnot [bool]) {
            throw (New-OpException -Kind 'invalid_request' -Message "the request field 'compress' must be true or false")
        }
        $compress = $compressProperty.Value
    }
    # write_errors 'stop': every write operation after a failed one is skipped (reads still run).
    $stopWrites = $false
    $modeProperty = $request.PSObject.Properties['write_errors']
    if ($null -ne $modeProperty) {
        $modeOk = ($modeProperty.Value -is [string]) -and (@('continue', 'stop') -ccontains $modeProperty.Value)
        if (-not $modeOk) {
            throw (New-OpException -Kind 'invalid_request' -Message "the request field 'write_errors' must be 'continue' or 'stop'")
        }
        $stopWrites = $modeProperty.Value -ceq 'stop'
    }
    return @{ Ops = $opsProperty.Value; StopWrites = $stopWrites; Compress = $compress }
}

function Invoke-RequestCleanup {
    # Run every action of $RequestCleanup once: $null, or their problems joined.
    $problems = New-Object -TypeName System.Collections.Generic.List[string]
    foreach ($action in @($RequestCleanup.ToArray())) {
        $problem = $null
        try {
            $problem = & $action
        }
        catch {
            $problem = Get-ErrorMessage -Exception $_.Exception
        }
        if (-not [string]::IsNullOrEmpty([string]$problem)) {
            $problems.Add([string]$problem)
        }
    }
    $RequestCleanup.Clear()
    if ($problems.Count -eq 0) {
        return $null
    }
    return ($problems -join '; ')
}

function Get-OpName {
    param($Op)
    if ($Op -is [System.Management.Automation.PSCustomObject] -and $null -ne $Op.PSObject.Properties['op']) {
        return [string]$Op.PSObject.Properties['op'].Value
    }
    return ''
}

$exitCode = 0
$compressReply = $false
try {
    $request = Read-Request -Json $RequestJson
    $compressReply = $request['Compress']
    $results = New-Object -TypeName System.Collections.Generic.List[object]
    $failedWrite = $null
    foreach ($op in $request['Ops']) {
        $opName = Get-OpName -Op $op
        $isWrite = $WriteOperations -ccontains $opName
        if ($isWrite -and $null -ne $failedWrite) {
            $results.Add(@{ ok = $false; error = 'skipped'; message = "not run: $failedWrite failed before it (write_errors: stop)" })
            continue
        }
        $result = Invoke-Operation -Op $op
        $results.Add($result)
        if ($isWrite -and $request['StopWrites'] -and -not $result['ok']) {
            $failedWrite = 'ops[{0}] ({1})' -f ($results.Count - 1), $opName
        }
    }
    $reply = @{ runner = 'nhs_cm'; protocol = $RunnerProtocol; ok = $true; results = $results.ToArray() }
}
catch {
    $kind = Get-ErrorKind -Exception $_.Exception
    if ($kind -ne 'invalid_request') {
        $kind = 'failed'
    }
    $reply = @{ runner = 'nhs_cm'; protocol = $RunnerProtocol; ok = $false; error = $kind; message = (Get-ErrorMessage -Exception $_.Exception); results = @() }
    $exitCode = 1
}
finally {
    $cleanupProblem = Invoke-RequestCleanup
}
if ($null -ne $cleanupProblem) {
    # Every operation ran, but the host is left with a loaded hive: the request fails so that
    # the controller says so (after a write call: roll back with backup_id=latest if needed).
    $reply = @{ runner = 'nhs_cm'; protocol = $RunnerProtocol; ok = $false; error = 'failed'; message = ('the operations ran, but {0}' -f $cleanupProblem); results = @() }
    $exitCode = 1
}
Write-Reply -Reply $reply -Compress $compressReply
exit $exitCode

# NHS-CM-RUNNER v1
# Runner of the nhs_cm.remediation collection, protocol v1 (docs/runner-protocol.md).
# The controller sends this text on standard input, followed by a line of four NUL characters
# and the request JSON; the bootstrap (BOOTSTRAP in _protocol.py) invokes it with the JSON as
# its only argument. It performs primitive reads only and decides nothing: all comparing and
# judging happens in Python on the controller. Every operation in $Operations returns exactly
# the reply fields listed in OPERATIONS (_protocol.py); tests/unit/test_runner_ps1.py checks
# that by parsing this file, so keep one hashtable literal per return statement.
# Windows PowerShell 5.1; ASCII only; no aliases.
param([string]$RequestJson)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$RunnerProtocol = 1
$ServiceStates = @('running', 'stopped', 'start_pending', 'stop_pending', 'continue_pending', 'pause_pending', 'paused', 'unknown')
$LoopbackHosts = @('localhost', '127.0.0.1', '[::1]')
$FileVersionCache = @{}

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
            if ($code -eq 'NotFound' -or $code -eq 'InvalidClass') {
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

# ---------------------------------------------------------------------------------------------
# Registry

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

# ---------------------------------------------------------------------------------------------
# Files and processes

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

# ---------------------------------------------------------------------------------------------
# Services, listeners, HTTP

function ConvertTo-ServiceState {
    param([string]$State)
    $normal = $State.ToLowerInvariant().Replace(' ', '_')
    if ($ServiceStates -contains $normal) {
        return $normal
    }
    return 'unknown'
}

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

# ---------------------------------------------------------------------------------------------
# Sessions
# Why the WTS API and not `query user`: quser.exe prints localised headers and states
# ("Active", "Aktiv", "Disc", "Getr."), truncates user names to 20 characters, omits the
# domain (so the SID cannot be resolved reliably) and fails with exit code 1 when nobody is
# logged on. WTSEnumerateSessions / WTSQuerySessionInformation give the session id, the exact
# state, the user and the domain independently of the display language. The cost is one
# Add-Type (a C# compile of about a second), done only when session_list is requested.

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

# ---------------------------------------------------------------------------------------------
# The operations. Each takes the request as a hashtable ($Req) and returns one hashtable
# literal with exactly the reply fields.

$Operations = @{
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
}

# ---------------------------------------------------------------------------------------------
# Dispatch and reply
# The request fields each operation accepts (OPERATIONS in _protocol.py; checked by a test).
# Any other field is refused with invalid_request.

$RequestFields = @{
    'reg_read' = @('key', 'view', 'depth', 'names')
    'process_list' = @()
    'service_query' = @('names', 'display_names')
    'tcp_listeners' = @('ports')
    'http_get' = @('url', 'timeout_ms')
    'file_info' = @('paths')
    'session_list' = @()
    'os_info' = @()
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
    param($Reply)
    $line = ConvertTo-AsciiJson -Value $Reply
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
    return ,$opsProperty.Value
}

$exitCode = 0
try {
    $ops = Read-Request -Json $RequestJson
    $results = New-Object -TypeName System.Collections.Generic.List[object]
    foreach ($op in $ops) {
        $results.Add((Invoke-Operation -Op $op))
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
Write-Reply -Reply $reply
exit $exitCode
